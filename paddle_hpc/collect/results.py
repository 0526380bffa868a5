"""What `collect` writes, and where: the tables' names, the folder, the state file that
makes the next collect incremental, and its format's version."""

from paddle_hpc.core import layout

RESULTS = layout.RESULTS
STATE_FILE = "collect.json"
VERSION = 6
NAMES = ("runs", "metrics", "errors")
