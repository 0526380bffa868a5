"""`paddle-hpc <verb> ...`: the one console script. Each verb is also
`python -m paddle_hpc.<verb>`. This layer alone turns errors into exit codes."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from rich.console import Console

from paddle_hpc.errors import PaddleHpcError

# verb -> (module, one-line help)
VERBS = {
    "sweep": ("paddle_hpc.sweep", "expand a Hydra grid and submit it as Slurm job arrays"),
    "status": ("paddle_hpc.status", "counts per state and a table of a sweep's runs"),
    "collect": ("paddle_hpc.collect.__main__", "runs, metrics and errors as pandas tables"),
    "report": ("paddle_hpc.report", "a static HTML page with the runs, curves and failures"),
    "info": ("paddle_hpc.info", "show the Slurm cluster as paddle_hpc sees it"),
}

EXIT_ERROR = 1
EXIT_USAGE = 2


def run(main: Callable[[Sequence[str]], int], argv: Sequence[str]) -> int:
    """Runs a verb's main; a PaddleHpcError becomes its message and exit code 1."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return main(argv)
    except PaddleHpcError as exc:
        err = Console(stderr=True, soft_wrap=True, highlight=False)
        err.print("[bold red]error:[/] ", end="")
        err.print(str(exc), markup=False)
        return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in VERBS:
        verb_main: Callable[[Sequence[str]], int] = importlib.import_module(VERBS[args[0]][0]).main
        return run(verb_main, args[1:])
    asked = not args or args[0] in ("-h", "--help")
    out = Console(stderr=not asked, highlight=False)
    if not asked:
        out.print(f"paddle-hpc: unknown verb {args[0]!r}", markup=False)
    out.print("usage: paddle-hpc <verb> [options]  (or: python -m paddle_hpc.<verb>)", markup=False)
    for verb, (_, text) in VERBS.items():
        out.print(f"  {verb:<10} {text}", markup=False)
    return 0 if asked else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
