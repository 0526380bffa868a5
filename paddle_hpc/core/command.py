"""What every verb's command line shares: errors become one message and an exit code.

Library code raises PaddleHpcError; only this layer turns it into exit code 1 (argparse
exits with 2 for a usage error). Every user-supplied text is printed literally, never
read as rich markup.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from rich.console import Console

from paddle_hpc.core.errors import PaddleHpcError

EXIT_ERROR = 1
EXIT_USAGE = 2
PIPE_WIDTH = 1000


def console(stderr: bool = False) -> Console:
    """A console that prints text as it is: no markup, no highlighting, long lines kept;
    into a pipe or a file, tables as wide as they need (paths are not folded)."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else PIPE_WIDTH
    return Console(stderr=stderr, soft_wrap=True, highlight=False, markup=False, width=width)


def run(main: Callable[[Sequence[str]], int], argv: Sequence[str]) -> int:
    """Runs a verb's main; a PaddleHpcError becomes its message and exit code 1."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return main(argv)
    except PaddleHpcError as exc:
        console(stderr=True).print(f"error: {exc}")
        return EXIT_ERROR
