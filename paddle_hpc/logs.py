"""`python -m paddle_hpc.logs SWEEP_DIR RUN [--node N] [--rank R] [--err|--out] [-n LINES] [-f]`

The tail of a run's worker log: global rank 0's, or --rank R's (global), or node N's
first; for a run that failed, the log of the rank that raised. --err and --out show
the node's own stderr and stdout as Slurm kept them (the launcher's and submitit's
messages). -f follows the log while the run is pending or running and stops when it
ends. --attempt K reads an earlier attempt's logs. Logs `clean` archived are read
as they were.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from paddle_hpc.backend import WATCH_MAX_AGE_S, Backend, RunStatus, backend_for, states
from paddle_hpc.backend.naming import pick_run
from paddle_hpc.backend.view import needs_attention
from paddle_hpc.collect import sources
from paddle_hpc.core import archive
from paddle_hpc.core.command import console, run
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.layout import (
    ATTEMPTS,
    LOGS,
    LOGS_ARCHIVE,
    SLURM,
    STEP_LOG,
    WORKER_LOG,
    RunDir,
    SweepDir,
)
from paddle_hpc.core.manifest import Manifest, RunEntry, load
from paddle_hpc.parse.worker_logs import failures

_NUMBERED = re.compile(rf"^(?:node|{WORKER_LOG}\.)(\d+)(?:\.gz)?$")


def existing(path: Path) -> Path | None:
    """path, its compressed form, or path as a member of a run's archive."""
    if path.exists():
        return path
    packed = path.with_name(path.name + ".gz")
    if packed.exists():
        return packed
    return path if archive.fingerprint(str(path)) is not None else None


def archived(run: RunDir, attempt: int | None) -> RunDir:
    """The run (or its earlier attempt `attempt`), or, once `clean` has moved its logs,
    the same attempt through the run's archive."""
    if run.logs.is_dir():
        return run
    top = run.path.parent.parent if attempt is not None else run.path  # runs/<id>
    inside = f"{ATTEMPTS}/{attempt}/{LOGS}" if attempt is not None else archive.latest_logs(top)
    return RunDir((top / LOGS_ARCHIVE / inside).parent) if inside is not None else run


def read_text(path: Path) -> str:
    return sources.read(str(path)).decode("utf-8", errors="replace")


def tail(text: str, lines: int) -> str:
    kept = text.splitlines(keepends=True)[-lines:] if lines > 0 else []
    return "".join(kept)


def numbered(folder: Path, prefix: str) -> list[int]:
    try:
        names = [p.name for p in folder.iterdir()]
    except OSError:
        names = archive.entries(str(folder))
    return sorted({int(m[1]) for n in names if n.startswith(prefix) and (m := _NUMBERED.match(n))})


def worker_logs(run: RunDir) -> list[tuple[int, int, Path]]:
    """(node, local rank, path) of every worker log, in order."""
    found = []
    for node in numbered(run.logs, "node"):
        for rank in numbered(run.node_logs(node), WORKER_LOG):
            path = existing(run.worker_log(node, rank))
            if path is not None:
                found.append((node, rank, path))
    return found


def failing_log(logs: Sequence[tuple[int, int, Path]]) -> Path | None:
    """The first worker log that holds a traceback or Paddle's error summary."""
    for _, _, path in logs:
        text = read_text(path)
        if ("Traceback" in text or "Error Message Summary" in text) and failures(
            text.splitlines(keepends=True)
        ):
            return path
    return None


def choose(run_dir: RunDir, node: int | None, rank: int | None, failed: bool) -> tuple[Path, str]:
    """The worker log to show, and why that one."""
    logs = worker_logs(run_dir)
    if rank is not None:
        per_node = len([1 for n, _, _ in logs if n == 0]) or 1
        node, local = divmod(rank, per_node)
        return run_dir.worker_log(node, local), f"global rank {rank}"
    if node is not None:
        return run_dir.worker_log(node, 0), f"node {node}, local rank 0"
    if failed and (path := failing_log(logs)) is not None:
        return path, "the rank that failed"
    return run_dir.worker_log(0, 0), "global rank 0"


def read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read()
    except FileNotFoundError:
        return b""


def follow(
    path: Path,
    offset: int,
    is_active: Callable[[], bool],
    write: Callable[[str], None],
    poll_s: float = 0.5,
    check_every_s: float = 5.0,
) -> None:
    """Prints what is appended to path from offset on, until is_active() says the run
    ended (asked every check_every_s), and then what came last."""
    last_check = time.monotonic()
    while True:
        data = read_from(path, offset)
        offset += len(data)
        if data:
            write(data.decode("utf-8", errors="replace"))
        if time.monotonic() - last_check >= check_every_s:
            last_check = time.monotonic()
            if not is_active():
                rest = read_from(path, offset)
                if rest:
                    write(rest.decode("utf-8", errors="replace"))
                return
        time.sleep(poll_s)


def status_of(
    backend: Backend, sweep: SweepDir, manifest: Manifest, run: RunEntry, max_age: float = 0.0
) -> RunStatus:
    found = states(backend, sweep, manifest, max_age)
    return next(s for s in found if s.run_id == run.run_id)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddle-hpc logs", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("run", help="run id, unique prefix or JOB_TASK")
    parser.add_argument("--node", type=int, help="node N's log (local rank 0)")
    parser.add_argument("--rank", type=int, help="global rank R's log")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--err", action="store_true", help="the node's stderr as Slurm kept it")
    which.add_argument("--out", action="store_true", help="the node's stdout as Slurm kept it")
    which.add_argument("--then", metavar="STEP", help="the output of the run's step STEP")
    parser.add_argument("-n", "--lines", type=int, default=20, help="how many lines (default: 20)")
    parser.add_argument("-f", "--follow", action="store_true", help="follow while it runs")
    parser.add_argument("--attempt", type=int, help="an earlier attempt's logs")
    args = parser.parse_args(argv)
    sweep = SweepDir(args.sweep_dir)
    manifest = load(sweep.path)
    entry = pick_run(manifest, args.run)
    backend = backend_for(manifest.executor)
    status = status_of(backend, sweep, manifest, entry)
    run_dir = sweep.run(entry.run_id)
    earlier = args.attempt is not None and args.attempt != status.attempt
    if earlier:
        run_dir = run_dir.attempt(args.attempt)
        if not run_dir.path.is_dir():
            raise PaddleHpcError(
                f"run {entry.run_id} has no attempt {args.attempt} on disk; its latest is "
                f"attempt {status.attempt}."
            )
    if args.then:
        path, why = run_dir.then(args.then) / STEP_LOG, f"its step {args.then}"
    elif args.err or args.out:
        node_path = backend.node_output(sweep, entry, args.node or 0, args.err)
        if node_path is None:
            raise PaddleHpcError(
                f"run {entry.run_id} ran locally: its launcher printed to the terminal of "
                "`paddle-hpc sweep`; the worker logs are all there is."
            )
        if existing(node_path) is None:  # `clean` archived it
            node_path = sweep.run(entry.run_id).archive / SLURM / node_path.name
        path, why = node_path, f"node {args.node or 0}'s {'stderr' if args.err else 'stdout'}"
    else:
        shown = archived(run_dir, args.attempt if earlier else None)
        path, why = choose(shown, args.node, args.rank, needs_attention(status))
    out = console()
    found = existing(path)
    if found is None and not (args.follow and status.active):
        raise PaddleHpcError(
            f"run {entry.run_id} ({status.state}) has no log at {path} yet"
            + ("; -f waits for it." if status.active else ".")
        )
    out.print(f"==> {found or path} ({why}; run {entry.run_id} {status.state}) <==")
    data = sources.read(str(found)) if found is not None else b""
    out.print(tail(data.decode("utf-8", errors="replace"), args.lines), end="")
    if args.follow and status.active and (found is None or found.suffix != ".gz"):

        def active() -> bool:
            return status_of(backend, sweep, manifest, entry, WATCH_MAX_AGE_S).active

        follow(path, len(data), active, lambda t: out.print(t, end=""))
    return 0


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
