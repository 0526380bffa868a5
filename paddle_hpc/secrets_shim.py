"""Runs `python secrets_shim.py FILE SCRIPT ARGS...` as `python SCRIPT ARGS...`, with
the variables of the JSON file FILE added to the environment first (see core/secret_env.py:
the secrets stay out of the environment Paddle's launcher writes to its logs).
"""

import json
import os
import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: secrets_shim.py FILE SCRIPT [ARGS...]")
    with Path(sys.argv[1]).open(encoding="utf-8") as handle:
        os.environ.update(json.load(handle))
    script = sys.argv[2]
    sys.argv = [script, *sys.argv[3:]]
    sys.path[0] = str(Path(script).resolve().parent)  # as `python SCRIPT` has it
    runpy.run_path(script, run_name="__main__")
