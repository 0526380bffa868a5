"""`python -m paddle_hpc.search SWEEP_DIR`: run (or take up) a sweep's search driver."""

import sys

from paddle_hpc.core.command import run
from paddle_hpc.search.driver import main

if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
