"""What a launcher leaves behind is ended: real processes, in a child Python so that
pytest itself does not become a subreaper."""

from __future__ import annotations

import subprocess
import sys

from paddle_hpc.node.orphans import stat_fields

SCRIPT = """\
import os, signal, subprocess, sys, time
from paddle_hpc.node import orphans
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
def children():
    return [pid for pid, fields in orphans.processes() if fields[1] == str(os.getpid())]
assert worker in children(), "the worker was not re-parented here"
ended = orphans.Launchers().end_left(5.0)
gone = not os.path.exists(f"/proc/{worker}")
print(ended, gone, children())
"""


def test_a_worker_the_launcher_left_is_ended() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "True", "[]"]


SIBLINGS = """\
import os, subprocess, sys, threading
from paddle_hpc.node import orphans
assert orphans.become_subreaper()
launchers = orphans.Launchers()
sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
# a probe the node runner runs itself, in its own session
helper = subprocess.Popen(sleep)
# a worker that a dead launcher left, in a session of its own
dead = subprocess.Popen(
    [sys.executable, "-c", LEAVE, *sleep], stdout=subprocess.PIPE, text=True
)
orphan = int(dead.stdout.readline())
dead.wait()
# sibling trials' launchers, started while another trial's end looks for leftovers
started = []
def start():
    for _ in range(40):
        started.append(launchers.start(sleep, dict(os.environ), None, lambda: None))
thread = threading.Thread(target=start)
thread.start()
ended = 0
while thread.is_alive() or ended == 0:
    ended += launchers.end_left(5.0)
thread.join()
alive = [proc.poll() is None for proc in started]
print(ended, all(alive), len(alive), helper.poll() is None, os.path.exists(f"/proc/{orphan}"))
for proc in [*started, helper]:
    proc.kill()
    proc.wait()
"""
LEAVE = """\
import subprocess, sys
worker = subprocess.Popen(sys.argv[1:], start_new_session=True)
print(worker.pid, flush=True)
"""


def test_one_trials_end_ends_no_siblings_launcher_nor_the_runners_own_child() -> None:
    """A packed task: while one trial's launcher has ended and what it left is being
    ended, a sibling's launcher starts. It lives on, and so does a process the node
    runner started in its own session; only the dead launcher's worker is ended."""
    script = SIBLINGS.replace("LEAVE", repr(LEAVE))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "True", "40", "True", "False"]


def test_the_fields_of_a_stat_line_with_an_ugly_name() -> None:
    assert stat_fields("4242 (a) b (c) S 17 4242 4242 0 -1 4194560")[:3] == ["S", "17", "4242"]
    assert stat_fields("1 (python3) R 0 1 1") == ["R", "0", "1", "1"]
    assert stat_fields("7 ()) Z 1 7 7")[:3] == ["Z", "1", "7"]
