"""`python -m paddle_hpc.clean SWEEP_DIR [--checkpoints]`: fewer files and less disk for
ended runs.

For every run that has ended (Slurm's word, or its state file's locally), its logs of
every attempt (each node's worker and launcher logs and environment) and the Slurm
output files of its tasks move into one compressed file, `runs/<id>/logs.zip`
(`logs`, the collector and the report read them there as before). Paddle's dumps of
the launcher's environment (`envlog.N`, `backup_env.N.json`; each node's
`environment.json` keeps what it ran with) and submitit's pickles of its tasks (and
its array's, once every run of that array has ended) are removed. A packed task's
Slurm output, which its trials share, is gzip'ed in place instead, and the compact
files of a run's nodes but node 0 go with their logs. With
`--checkpoints`, the checkpoints of the runs that did not complete (failed, pruned,
cancelled, stopped) go too; a completed run keeps its own. A run pending or running is
not touched; neither are `metrics.jsonl`, state and config files, nor the tables in
`results/` (the collector's record of where each log was goes: the next collect finds
them in the archives). An ended run is then 6 files and folders: its folder,
`config.yaml`, `state.json`, `metrics.jsonl`, node 0's `collected-node0.arrow` and
`logs.zip`. Prints what it removed
and the space saved.
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from paddle_hpc.backend import backend_for, states
from paddle_hpc.collect.check import CHECK_FILE
from paddle_hpc.collect.results import STATE_FILE
from paddle_hpc.core import archive, runstate
from paddle_hpc.core.command import console, run
from paddle_hpc.core.disk import disk_use
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.layout import (
    ATTEMPT_MARK,
    ATTEMPTS,
    COMPACT_FILES,
    LOGS,
    SLURM,
    STATE_LOCK,
    RunDir,
    SweepDir,
)
from paddle_hpc.core.manifest import RunEntry, load


def compress(path: Path) -> int:
    """gzip's path to path.gz (same mode and times), removes path; returns bytes saved."""
    packed = path.with_name(path.name + ".gz")
    tmp = path.with_name(f".{path.name}.gz.tmp")
    with path.open("rb") as source, gzip.open(tmp, "wb", compresslevel=6) as target:
        shutil.copyfileobj(source, target, 1 << 20)
    shutil.copystat(path, tmp)
    saved = path.stat().st_size - tmp.stat().st_size
    tmp.replace(packed)
    path.unlink()
    return saved


# Paddle's launcher writes its whole environment per rank: envlog.N, backup_env.N.json
_ENV_DUMP = re.compile(r"^(?:envlog\.\d+|backup_env\.\d+\.json)(?:\.gz)?$")


def log_files(run: RunDir, attempt: int) -> Iterator[tuple[Path, str]]:
    """Every file in the run's log folders, each with its name in the archive: the
    current logs as attempt `attempt`'s (a node's own mark says which, if it has one)."""
    for node in sorted(p for p in run.logs.glob("node*") if p.is_dir()):
        try:
            number = int((node / ATTEMPT_MARK).read_text(encoding="ascii"))
        except (OSError, ValueError):
            number = attempt
        for path in sorted(node.rglob("*")):
            if path.is_file():
                yield path, f"{ATTEMPTS}/{number}/{LOGS}/{node.name}/{path.relative_to(node)}"
    for folder in sorted(run.path.glob(f"{ATTEMPTS}/*/{LOGS}")):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                yield path, str(path.relative_to(run.path))


def task_files(sweep: SweepDir, run: RunEntry) -> tuple[list[Path], list[Path]]:
    """Slurm output files (each node's) and submitit's pickles of the run's tasks."""
    outputs: list[Path] = []
    pickles: list[Path] = []
    tasks = [(s.job_id, s.array_task) for s in run.submissions] + [(run.job_id, run.array_task)]
    for job, task in tasks:
        if job is None or task is None:
            continue
        prefix = f"{job}_{task}_"
        for path in sweep.slurm.glob(f"{prefix}*"):
            if path.name.endswith(".pkl"):
                pickles.append(path)
            elif path.name.startswith(prefix) and path.name.endswith(("_log.out", "_log.err")):
                outputs.append(path)
            elif path.name.endswith(("_log.out.gz", "_log.err.gz")) and not run.packed:
                outputs.append(path)  # an earlier `clean` compressed it in place
    return outputs, pickles


@dataclass
class Cleaned:
    archived: int = 0  # log files moved into archives
    pickles: int = 0
    dumps: int = 0  # Paddle's environment dumps
    checkpoints: int = 0  # runs whose checkpoints went
    saved: int = 0  # bytes


def clean_run(
    sweep: SweepDir, entry: RunEntry, state: str, checkpoints: bool, done: Cleaned
) -> None:
    run_dir = sweep.run(entry.run_id)
    written = runstate.read(run_dir.state)
    attempt = written.attempt if written is not None else entry.attempt
    outputs, pickles = task_files(sweep, entry)
    keep: list[tuple[Path, str]] = []
    for path, member in log_files(run_dir, attempt):
        if _ENV_DUMP.match(path.name) or path.name == ATTEMPT_MARK:
            done.saved += path.stat().st_size
            path.unlink()
            done.dumps += path.name != ATTEMPT_MARK
        else:
            keep.append((path, member.removesuffix(".gz")))
    for path in outputs:
        if entry.packed:  # its trials share it
            if path.suffix != ".gz":
                done.saved += compress(path)
        else:
            keep.append((path, f"{SLURM}/{path.name.removesuffix('.gz')}"))
    done.saved += archive.add(run_dir.archive, keep)
    done.archived += len(keep)
    for folder in [run_dir.logs, *run_dir.path.glob(f"{ATTEMPTS}/*/{LOGS}")]:
        remove_empty(folder)
    (run_dir.path / STATE_LOCK).unlink(missing_ok=True)  # the run has ended: no writer
    for path in run_dir.path.glob(COMPACT_FILES):  # node 0's holds metrics.jsonl's rows;
        if path != run_dir.compact(0):  # the others' are mostly their logs', now archived
            done.saved += path.stat().st_size
            path.unlink()
    for path in pickles:
        done.saved += path.stat().st_size
        path.unlink()
        done.pickles += 1
    if checkpoints and state != runstate.COMPLETED and run_dir.checkpoints.is_dir():
        done.saved += disk_use(run_dir.checkpoints).bytes
        shutil.rmtree(run_dir.checkpoints)
        done.checkpoints += 1


def remove_empty(folder: Path) -> None:
    """Removes the folder's empty folders, and the folder if it is left empty."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddle-hpc clean", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument(
        "--checkpoints",
        action="store_true",
        help="also remove the checkpoints of the runs that ended without completing",
    )
    args = parser.parse_args(argv)
    sweep = SweepDir(args.sweep_dir)
    manifest = load(sweep.path)
    found = states(backend_for(manifest.executor), sweep, manifest)
    ended = [(run, s.state) for run, s in zip(manifest.runs, found, strict=True) if s.ended]
    if not ended:
        raise PaddleHpcError(f"nothing to clean: no run of {sweep.path} has ended yet.")
    done = Cleaned()
    for entry, state in ended:
        clean_run(sweep, entry, state, args.checkpoints, done)
    over = {entry.run_id for entry, _ in ended}
    # an array's tasks' pickles, once each of its runs has ended (a step's may yet start)
    for array in manifest.arrays:
        bundle = sweep.slurm / f"{array.job_id}_tasks.pkl"
        if array.step is None and set(array.run_ids) <= over and bundle.exists():
            done.saved += bundle.stat().st_size
            bundle.unlink()
            done.pickles += 1
    if done.archived:  # the collector's record of where each log was: it finds them anew
        for name in (STATE_FILE, CHECK_FILE):
            (sweep.results / name).unlink(missing_ok=True)
    kept = f", the checkpoints of {done.checkpoints} run(s)" if args.checkpoints else ""
    console().print(
        f"{len(ended)} ended run(s) of {len(found)}: archived {done.archived} log file(s) "
        f"(runs/<id>/logs.zip), removed {done.pickles} pickle(s), {done.dumps} environment "
        f"dump(s){kept}, saved {done.saved / 2**20:.1f} MiB"
        + (
            f"; {len(found) - len(ended)} run(s) not ended were left alone"
            if len(ended) < len(found)
            else ""
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
