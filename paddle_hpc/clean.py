"""`python -m paddle_hpc.clean SWEEP_DIR`: less disk for ended runs.

For every run that has ended (Slurm's word, or its state file's locally): its worker
and launcher logs (every attempt's) and its Slurm output files are gzip'ed in place
(`workerlog.0` -> `workerlog.0.gz`; `logs` and the collector read them as before),
Paddle's dumps of the launcher's environment (`envlog.N`, `backup_env.N.json`; each
node's `environment.json` keeps what it ran with) and submitit's pickles of its tasks
are removed. With `--checkpoints`, so are the checkpoints of the runs that did not
complete (failed, pruned, cancelled, stopped); a completed run keeps its own. A run
pending or running is not touched; neither are `metrics.jsonl`, state and config
files, nor `results/`. Prints what it removed and the space saved.
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from paddle_hpc.backend import backend_for, states
from paddle_hpc.core import runstate
from paddle_hpc.core.command import console, run
from paddle_hpc.core.disk import disk_use
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.layout import LOGS, RunDir, SweepDir
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


def log_files(run: RunDir) -> Iterator[Path]:
    """Every file in the run's log folders, earlier attempts' too."""
    folders = [run.logs, *run.path.glob(f"attempts/*/{LOGS}")]
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                yield path


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
    return outputs, pickles


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
    saved = files = removed = dumps = checkpoints = 0
    for entry, state in ended:
        outputs, pickles = task_files(sweep, entry)
        run_dir = sweep.run(entry.run_id)
        for path in [*log_files(run_dir), *outputs]:
            if _ENV_DUMP.match(path.name):
                saved += path.stat().st_size
                path.unlink()
                dumps += 1
            elif path.suffix != ".gz":
                saved += compress(path)
                files += 1
        for path in pickles:
            saved += path.stat().st_size
            path.unlink()
            removed += 1
        if args.checkpoints and state != runstate.COMPLETED and run_dir.checkpoints.is_dir():
            saved += disk_use(run_dir.checkpoints).bytes
            shutil.rmtree(run_dir.checkpoints)
            checkpoints += 1
    kept = f", the checkpoints of {checkpoints} run(s)" if args.checkpoints else ""
    console().print(
        f"{len(ended)} ended run(s) of {len(found)}: compressed {files} log file(s), removed "
        f"{removed} pickle(s), {dumps} environment dump(s){kept}, saved {saved / 2**20:.1f} MiB"
        + (
            f"; {len(found) - len(ended)} run(s) not ended were left alone"
            if len(ended) < len(found)
            else ""
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
