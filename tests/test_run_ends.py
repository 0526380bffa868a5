"""A run's end is written once: the first word on an attempt's end stands, whoever says
it (a node, `cancel`, a search's pruner), also when they say it at the same moment."""

from __future__ import annotations

import errno
import fcntl
import multiprocessing
from pathlib import Path

import pytest

from paddle_hpc.core import runstate
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.runstate import RunState


def test_the_pruners_word_comes_first_and_stands(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    runstate.write(path, RunState("RUNNING", attempt=2, job="7_1", pgid=99))
    assert runstate.stop(path, 2, "7_1", "PRUNED", "pruned by Optuna at step 3 (0.9)")
    # the node hears SIGTERM afterwards and would say CANCELLED: too late
    assert not runstate.write_unless_ended(path, RunState("CANCELLED", attempt=2))
    state = runstate.read(path)
    assert state is not None
    assert (state.state, state.reason, state.pgid) == (
        "PRUNED",
        "pruned by Optuna at step 3 (0.9)",
        99,
    )


def test_a_run_that_ended_by_itself_first_keeps_its_end(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    runstate.write(path, RunState("COMPLETED", attempt=1, returncode=0))
    assert not runstate.stop(path, 1, None, "PRUNED", "pruned")
    assert runstate.read(path) == RunState("COMPLETED", attempt=1, returncode=0, time=_time(path))


def test_a_retrying_run_is_stopped_from_coming_back(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    runstate.write(path, RunState("FAILED", attempt=1, retrying=True, reason="requeued"))
    assert runstate.stop(path, 1, "7_0", "CANCELLED", None)
    state = runstate.read(path)
    assert state is not None and (state.state, state.retrying) == ("CANCELLED", False)


def test_an_earlier_attempts_file_is_no_end_of_this_one(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    runstate.write(path, RunState("FAILED", attempt=1))
    assert runstate.write_unless_ended(path, RunState("RUNNING", attempt=2))
    assert runstate.stop(path, 3, "8_0", "CANCELLED", None)  # not started yet
    state = runstate.read(path)
    assert state is not None and (state.state, state.attempt, state.job) == ("CANCELLED", 3, "8_0")


def test_a_failing_node_replaces_node_0s_completed_only(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    runstate.write(path, RunState("COMPLETED", attempt=1, returncode=0))
    assert runstate.write_unless_ended(path, RunState("FAILED", attempt=1), over="COMPLETED")
    assert not runstate.write_unless_ended(path, RunState("TIMEOUT", attempt=1), over="COMPLETED")
    state = runstate.read(path)
    assert state is not None and state.state == "FAILED"


def _time(path: Path) -> str:
    state = runstate.read(path)
    assert state is not None
    return state.time


def _say(path: str, word: str, start: multiprocessing.synchronize.Event) -> None:
    start.wait()
    if word in ("PRUNED", "CANCELLED"):
        said = runstate.stop(Path(path), 1, "7_0", word, f"by {word}")
    else:
        said = runstate.write_unless_ended(
            Path(path), RunState(word, attempt=1, reason=f"by {word}")
        )
    raise SystemExit(0 if said else 1)


def test_of_many_writers_at_once_one_is_heard(tmp_path: Path) -> None:
    words = ["PRUNED", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "PREEMPTED"] * 3
    for _ in range(5):
        path = tmp_path / "state.json"
        runstate.write(path, RunState("RUNNING", attempt=1))
        start = multiprocessing.get_context("fork").Event()
        procs = [
            multiprocessing.get_context("fork").Process(target=_say, args=(str(path), w, start))
            for w in words
        ]
        for proc in procs:
            proc.start()
        start.set()
        for proc in procs:
            proc.join(30)
        heard = [w for w, proc in zip(words, procs, strict=True) if proc.exitcode == 0]
        assert len(heard) == 1, heard
        state = runstate.read(path)
        assert state is not None and (state.state, state.reason) == (heard[0], f"by {heard[0]}")


def test_a_filesystem_without_locks_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_locks(fd: int, how: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    path = tmp_path / "state.json"
    runstate.write(path, RunState("RUNNING", attempt=1))
    monkeypatch.setattr(fcntl, "lockf", no_locks)
    with pytest.raises(PaddleHpcError, match=r"does not lock files .*written twice.*sweep\.dir"):
        runstate.write_unless_ended(path, RunState("COMPLETED", attempt=1))
    state = runstate.read(path)
    assert state is not None and state.state == "RUNNING"  # nothing half-written
