"""Concurrent changes of one sweep's manifest lose nothing: real processes and threads,
each reading, changing and writing the manifest under the sweep's lock."""

from __future__ import annotations

import errno
import fcntl
import json
import multiprocessing
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.manifest import ArrayEntry, Manifest, RunEntry, load, locked, save, update

WRITERS, CHANGES = 6, 15


def one_array_more(manifest: Manifest, job_id: int) -> Manifest:
    time.sleep(0.002)  # a writer that takes a moment between its read and its write
    return replace(manifest, arrays=(*manifest.arrays, ArrayEntry(job_id, 0, ())))


def writer(sweep_dir: str, first: int, locking: bool) -> None:
    path = Path(sweep_dir)
    for job_id in range(first, first + CHANGES):
        if locking:
            update(path, lambda m, j=job_id: one_array_more(m, j))
        else:  # what every writer did before: read, change, write
            save(path, one_array_more(load(path), job_id))


def start_sweep(tmp_path: Path) -> Path:
    runs = (RunEntry("r1", 0, ("a=1",), {"a": "1"}, 0),)
    with locked(tmp_path):
        save(tmp_path, Manifest("s", "t", (), "slurm", ("a",), ({},), runs))
    return tmp_path


def recorded(sweep_dir: Path) -> list[int]:
    return sorted(a.job_id for a in load(sweep_dir).arrays)


def race(sweep_dir: Path, locking: bool) -> list[int]:
    context = multiprocessing.get_context("spawn")  # fresh processes, as commands are
    procs = [
        context.Process(target=writer, args=(str(sweep_dir), 1000 * n, locking))
        for n in range(WRITERS)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    return recorded(sweep_dir)


def test_concurrent_writer_processes_lose_no_submission(tmp_path: Path) -> None:
    expected = sorted(1000 * n + k for n in range(WRITERS) for k in range(CHANGES))
    assert race(start_sweep(tmp_path / "locked"), locking=True) == expected


def test_without_the_lock_the_same_race_loses_submissions(tmp_path: Path) -> None:
    """The race above is a real one: read-change-write without the lock drops arrays."""
    lost = WRITERS * CHANGES - len(race(start_sweep(tmp_path / "bare"), locking=False))
    assert lost > 0


def test_threads_of_one_process_take_turns_and_a_holder_may_lock_again(tmp_path: Path) -> None:
    sweep_dir = start_sweep(tmp_path)
    threads = [
        threading.Thread(
            target=lambda n=n: [
                update(sweep_dir, lambda m, j=j: one_array_more(m, j))
                for j in range(n * 100, n * 100 + 10)
            ]
        )
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert recorded(sweep_dir) == sorted(n * 100 + j for n in range(4) for j in range(10))
    with locked(sweep_dir):  # reentrant: a command that locks, then submits (which locks)
        update(sweep_dir, lambda m: one_array_more(m, 7))
    assert 7 in recorded(sweep_dir)
    assert (sweep_dir / "manifest.lock").exists()
    assert json.loads((sweep_dir / "manifest.json").read_text())["arrays"][-1]["job_id"] == 7


def test_a_lock_held_elsewhere_makes_a_writer_wait(tmp_path: Path) -> None:
    sweep_dir = start_sweep(tmp_path)
    context = multiprocessing.get_context("spawn")
    holding, release = context.Event(), context.Event()
    other = context.Process(target=hold, args=(str(sweep_dir), holding, release))
    other.start()
    try:
        assert holding.wait(60)
        done = threading.Event()
        waiter = threading.Thread(
            target=lambda: (update(sweep_dir, lambda m: one_array_more(m, 1)), done.set())
        )
        waiter.start()
        assert not done.wait(1.0)  # the other process holds the lock
        release.set()
        assert done.wait(30)
        waiter.join()
    finally:
        release.set()
        other.join(30)
    assert recorded(sweep_dir) == [1]


def hold(sweep_dir: str, holding: object, release: object) -> None:
    with locked(Path(sweep_dir)):
        holding.set()  # type: ignore[attr-defined]
        release.wait(60)  # type: ignore[attr-defined]


def test_a_missing_manifest_is_named_and_the_lock_released(tmp_path: Path) -> None:
    with pytest.raises(PaddleHpcError, match="is not a sweep directory"):
        update(tmp_path, lambda m: m)
    with locked(tmp_path):  # free again
        pass


def test_a_filesystem_without_locks_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_locks(fd: int, how: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "lockf", no_locks)
    with pytest.raises(PaddleHpcError, match=r"does not lock files .*sweep\.dir"), locked(tmp_path):
        pass


def test_a_manifest_is_saved_as_asdict_gives_it_and_read_back_whole(tmp_path: Path) -> None:
    from dataclasses import asdict

    from paddle_hpc.core.manifest import ArrayEntry, Feed, Manifest, RunEntry, Submission, to_dict

    runs = (
        RunEntry("r0", 0, ("a=1",), {"a": "1"}, 0, 7, 0, 2, (Submission(5, 0, "FAILED", 1),)),
        RunEntry("r1", 1, ("a='x y $(z)'",), {"a": "x y $(z)"}, 0, config_at=(10, 20)),
    )
    manifest = Manifest(
        "s",
        "2026-12-05",
        ("python", "-m", "paddle_hpc.sweep"),
        "slurm",
        ("a",),
        ({"resources": {"nodes": 1}},),
        runs,
        (ArrayEntry(7, 0, ("r0",)),),
        "submitted",
        extra={"base": {"a": [1, {"b": None}]}},
        feed=Feed(("r1",), {"max_parallel": 8}, ("MaxSubmitJobs=5 of association a",)),
    )
    assert json.loads(json.dumps(to_dict(manifest))) == json.loads(json.dumps(asdict(manifest)))
    save(tmp_path, manifest)
    assert load(tmp_path) == manifest
