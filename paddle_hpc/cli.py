"""`paddle-hpc <verb> ...`: the one console script. Each verb is also
`python -m paddle_hpc.<verb>`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from paddle_hpc import __version__
from paddle_hpc.core.command import EXIT_USAGE, console, run

# verb -> (module, one-line help)
VERBS = {
    "sweep": ("paddle_hpc.sweep", "expand a Hydra grid and submit it as Slurm job arrays"),
    "status": ("paddle_hpc.status", "counts per state, and the runs that need attention"),
    "list": ("paddle_hpc.list", "every sweep you submitted, newest first"),
    "logs": ("paddle_hpc.logs", "the tail of a run's worker log; -f follows it"),
    "cancel": ("paddle_hpc.cancel", "cancel a sweep, some of its runs, or runs in a state"),
    "retry": ("paddle_hpc.retry", "resubmit the runs that failed, as their next attempt"),
    "clean": ("paddle_hpc.clean", "put ended runs' logs in one logs.zip each, remove pickles"),
    "cost": ("paddle_hpc.cost", "GPU- and CPU-hours charged, and what runs used of their request"),
    "collect": ("paddle_hpc.collect.__main__", "runs, metrics and errors as pandas tables"),
    "report": ("paddle_hpc.report", "an interactive HTML page of the runs, curves and failures"),
    "info": ("paddle_hpc.info", "show the Slurm cluster as paddle_hpc sees it"),
    "exporter": ("paddle_hpc.exporter", "a Prometheus endpoint of your sweeps and their runs"),
    "search": ("paddle_hpc.search.__main__", "run (or take up) a sweep's Optuna search"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--version"]:
        console().print(f"paddle-hpc {__version__}")
        return 0
    if args and args[0] in VERBS:
        verb_main: Callable[[Sequence[str]], int] = importlib.import_module(VERBS[args[0]][0]).main
        return run(verb_main, args[1:])
    asked = not args or args[0] in ("-h", "--help")
    out = console(stderr=not asked)
    if not asked:
        out.print(f"paddle-hpc: unknown verb {args[0]!r}")
    out.print("usage: paddle-hpc <verb> [options]  (or: python -m paddle_hpc.<verb>)")
    out.print("       paddle-hpc --version")
    for verb, (_, text) in VERBS.items():
        out.print(f"  {verb:<10} {text}")
    return 0 if asked else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
