"""Runs `python run_module.py MODULE ARGS...` as `python -m MODULE ARGS...`.

paddle.distributed.launch starts a training script by path; this file is that path
when a run's program is a module (program.module).
"""

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: run_module.py MODULE [ARGS...]")
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    sys.path[0] = str(Path.cwd())  # as `python -m` has it: modules of program.cwd import
    runpy.run_module(module, run_name="__main__", alter_sys=True)
