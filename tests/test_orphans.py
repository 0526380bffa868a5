"""What a launcher leaves behind is ended: real processes, in a child Python so that
pytest itself does not become a subreaper."""

from __future__ import annotations

import subprocess
import sys

from paddle_hpc.orphans import stat_fields

SCRIPT = """\
import os, signal, subprocess, sys, time
from paddle_hpc import orphans
assert orphans.become_subreaper()
# a 'launcher' that starts a worker in a session of its own, as Paddle's does, then dies
launcher = subprocess.Popen([sys.executable, "-c", '''
import os, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                          preexec_fn=os.setsid)
print(worker.pid, flush=True)
time.sleep(600)
'''], stdout=subprocess.PIPE, text=True)
worker = int(launcher.stdout.readline())
os.kill(launcher.pid, signal.SIGKILL)
launcher.wait()
time.sleep(0.5)
assert worker in orphans.children(os.getpid()), "the worker was not re-parented here"
ended = orphans.end_children(5.0)
gone = not os.path.exists(f"/proc/{worker}")
print(ended, gone, orphans.children(os.getpid()))
"""


def test_a_worker_the_launcher_left_is_ended() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "True", "[]"]


def test_the_fields_of_a_stat_line_with_an_ugly_name() -> None:
    assert stat_fields("4242 (a) b (c) S 17 4242 4242 0 -1 4194560")[:3] == ["S", "17", "4242"]
    assert stat_fields("1 (python3) R 0 1 1") == ["R", "0", "1", "1"]
    assert stat_fields("7 ()) Z 1 7 7")[:3] == ["Z", "1", "7"]
