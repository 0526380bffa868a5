"""The sweep manifest: run id <-> overrides <-> the submissions of each run.

`SWEEP_DIR/manifest.json`, always written whole and atomically. Its `state` says how
the last submission went: `planned` (nothing reached Slurm), `submitted`, or `failed`
(with `error`; any array that submission had submitted was cancelled). A run's current
submission is its `job_id` and `array_task`; `retry` moves them into `submissions`
with the state they ended in, so every attempt stays on record.

Readers just read it. Every change is made under the sweep's lock (`locked`, or
`update`), reading the manifest afresh inside it: `retry`, extending a sweep, a search
driver and a local backend's thread may change one sweep at once, and a change made
from a copy read before the lock would drop what another writer recorded meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from paddle_hpc.core import runstate
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.files import lock_file, write_atomic
from paddle_hpc.core.layout import MANIFEST, MANIFEST_LOCK, STATE, SweepDir

VERSION = 1


@dataclass(frozen=True)
class Submission:
    """An earlier submission of a run, and the state it ended in."""

    job_id: int | None
    array_task: int | None
    state: str
    attempt: int  # the attempt number it started as


@dataclass(frozen=True)
class RunEntry:
    run_id: str
    index: int
    overrides: tuple[str, ...]
    swept: dict[str, str]
    shape: int  # index into Manifest.shapes
    job_id: int | None = None  # the array's job id
    array_task: int | None = None
    attempt: int = 1  # the attempt number the current submission starts as
    submissions: tuple[Submission, ...] = ()
    packed: bool = False  # its current task runs several trials (sweep.trials_per_task)
    # its config's (offset, length) in run-configs.yaml; None: in runs/<id>/config.yaml
    config_at: tuple[int, int] | None = None

    @property
    def job(self) -> str:
        """'12_3', or '' when not submitted to Slurm."""
        return "" if self.job_id is None else f"{self.job_id}_{self.array_task}"


@dataclass(frozen=True)
class ArrayEntry:
    job_id: int
    shape: int
    run_ids: tuple[str, ...]  # task i runs run_ids[i * k : (i + 1) * k]
    trials_per_task: int = 1  # k
    image: dict[str, str] | None = None  # the container image at submission: its digest
    step: str | None = None  # sweep.then's step its tasks run, after the training array's

    def task_of(self, position: int) -> int:
        """The task that runs run_ids[position]."""
        return position // self.trials_per_task


@dataclass(frozen=True)
class Feed:
    """Runs waiting for room in the queue, which the sweep's feeder submits as earlier
    tasks leave it (backend/feed.py), and what they are submitted with."""

    run_ids: tuple[str, ...]
    sweep: dict[str, Any]  # the SweepConfig of the submission that left them waiting
    limits: tuple[str, ...]  # the caps on the user's queue that hold them, as Slurm names them


@dataclass(frozen=True)
class Manifest:
    name: str
    created: str
    command: tuple[str, ...]
    executor: str  # slurm or local
    axes: tuple[str, ...]
    shapes: tuple[dict[str, Any], ...]  # the resources of each array shape
    runs: tuple[RunEntry, ...]
    arrays: tuple[ArrayEntry, ...] = ()
    state: str = "planned"
    error: str | None = None
    version: int = VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    feed: Feed | None = None

    def with_arrays(self, arrays: tuple[ArrayEntry, ...], state: str) -> Manifest:
        """The runs in `arrays` get their job ids; the arrays are added to the ones before."""
        where = {
            rid: (a.job_id, a.task_of(i), a.trials_per_task > 1)
            for a in arrays
            if a.step is None
            for i, rid in enumerate(a.run_ids)
        }
        runs = []
        for run in self.runs:
            if run.run_id in where:
                job, task, packed = where[run.run_id]
                run = replace(run, job_id=job, array_task=task, packed=packed)
            runs.append(run)
        return replace(self, arrays=self.arrays + arrays, runs=tuple(runs), state=state, error=None)

    def step_task(self, run_id: str, step: str) -> tuple[int, int] | None:
        """The (job, task) of the run's step, its latest submission; None if none."""
        for array in reversed(self.arrays):
            if array.step == step and run_id in array.run_ids:
                return array.job_id, array.run_ids.index(run_id)
        return None

    def for_retry(self, ended: Mapping[str, tuple[str, int]]) -> Manifest:
        """run id -> (the state its submission ended in, its last attempt): that
        submission goes on record, and the run waits to be submitted as the next attempt."""
        runs = []
        for run in self.runs:
            if run.run_id in ended:
                state, last = ended[run.run_id]
                done = Submission(run.job_id, run.array_task, state, run.attempt)
                run = replace(
                    run,
                    job_id=None,
                    array_task=None,
                    attempt=max(last, run.attempt) + 1,
                    submissions=(*run.submissions, done),
                )
            runs.append(run)
        return replace(self, runs=tuple(runs))

    def without(self, run_ids: Collection[str]) -> Manifest:
        """The runs no longer waiting in the feed (cancelled before they were submitted)."""
        if self.feed is None:
            return self
        left = tuple(r for r in self.feed.run_ids if r not in run_ids)
        return replace(self, feed=replace(self.feed, run_ids=left) if left else None)

    def run(self, run_id: str) -> RunEntry:
        return next(r for r in self.runs if r.run_id == run_id)


def manifest_path(sweep_dir: Path) -> Path:
    return sweep_dir / MANIFEST


def save(sweep_dir: Path, manifest: Manifest) -> None:
    """Writes the manifest whole; call it under `locked(sweep_dir)`. Compact JSON, which
    the json module writes in C: a 10,000-run manifest in tens of milliseconds."""
    write_atomic(manifest_path(sweep_dir), json.dumps(to_dict(manifest), separators=(",", ":")))


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def to_dict(manifest: Manifest) -> dict[str, Any]:
    """What `asdict` gives, without its deep copies."""
    data = _fields(manifest)
    data["runs"] = [
        {**_fields(r), "submissions": [_fields(s) for s in r.submissions]} for r in manifest.runs
    ]
    data["arrays"] = [_fields(a) for a in manifest.arrays]
    data["feed"] = _fields(manifest.feed) if manifest.feed is not None else None
    return data


class _SweepLock:
    """This process's hold on one sweep's lock. POSIX locks belong to a process, so its
    threads (a search driver and its local backend's) take turns on `turn` first."""

    def __init__(self) -> None:
        self.turn = threading.RLock()
        self.depth = 0  # how deep the holding thread is in `locked`
        self.fd = -1


_LOCKS: dict[Path, _SweepLock] = {}
_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def locked(sweep_dir: Path) -> Iterator[None]:
    """Holds the sweep's lock, `SWEEP_DIR/manifest.lock`: an fcntl (POSIX) lock, which
    NFS and Lustre (mounted with `flock`) carry to every host. Reentrant in a thread."""
    key = sweep_dir.resolve()
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(key, _SweepLock())
    with lock.turn:
        if lock.depth == 0:
            lock.fd = _lock_file(key)
        lock.depth += 1
        try:
            yield
        finally:
            lock.depth -= 1
            if lock.depth == 0:
                os.close(lock.fd)  # which releases the lock


def _lock_file(sweep_dir: Path) -> int:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    return lock_file(
        sweep_dir / MANIFEST_LOCK, "concurrent changes of the sweep could lose submissions"
    )


def update(sweep_dir: Path, change: Callable[[Manifest], Manifest]) -> Manifest:
    """Applies `change` to the manifest as it is now, under the sweep's lock; returns
    what was saved."""
    with locked(sweep_dir):
        changed = change(load(sweep_dir))
        save(sweep_dir, changed)
        return changed


def load(sweep_dir: Path) -> Manifest:
    path = manifest_path(sweep_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PaddleHpcError(
            f"{sweep_dir} is not a sweep directory: it has no {MANIFEST}. "
            "Pass the directory that `python -m paddle_hpc.sweep` printed, or see "
            "`paddle-hpc list`."
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise PaddleHpcError(f"{path} cannot be read as JSON ({exc}).") from exc
    try:
        return from_dict(data)
    except (KeyError, TypeError, AttributeError) as exc:
        raise PaddleHpcError(f"{path} is not a paddle_hpc manifest ({exc!r}).") from exc


def from_dict(data: dict[str, Any]) -> Manifest:
    if data.get("version") != VERSION:
        raise PaddleHpcError(f"manifest version {data.get('version')}, expected {VERSION}.")
    runs = tuple(
        RunEntry(
            **{
                **r,
                "overrides": tuple(r["overrides"]),
                "submissions": tuple(Submission(**s) for s in r.get("submissions", ())),
                "config_at": tuple(r["config_at"]) if r.get("config_at") else None,
            }
        )
        for r in data.pop("runs")
    )
    arrays = tuple(ArrayEntry(**{**a, "run_ids": tuple(a["run_ids"])}) for a in data.pop("arrays"))
    feed = data.pop("feed", None)
    return Manifest(
        **{
            **data,
            "command": tuple(data["command"]),
            "axes": tuple(data["axes"]),
            "shapes": tuple(data["shapes"]),
        },
        runs=runs,
        arrays=arrays,
        feed=None
        if feed is None
        else Feed(tuple(feed["run_ids"]), feed["sweep"], tuple(feed["limits"])),
    )


def step_state(
    sweep: SweepDir,
    manifest: Manifest,
    run_id: str,
    step: str,
    run_state: str,
    slurm: Mapping[tuple[int, int], str] | None = None,
) -> str:
    """The run's step's state now (runstate.step_state), from its state file, Slurm's
    record of its latest task (`slurm`: (job, task) -> state, when asked) and its run's
    state."""
    task = manifest.step_task(run_id, step)
    own = runstate.read(sweep.run(run_id).then(step) / STATE)
    record = slurm.get(task) if slurm is not None and task is not None else None
    job = f"{task[0]}_{task[1]}" if task is not None else None
    return runstate.step_state(own, run_state, record, job)
