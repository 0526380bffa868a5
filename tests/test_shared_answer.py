"""Watchers of the same jobs share one sacct answer (slurm/shared.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from paddle_hpc.slurm.shared import KEEP_S, shared_answer


class Sacct:
    """Stands for sacct: counts its calls, answers with the call's number."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"answer {self.calls}\n"


def test_an_answer_younger_than_max_age_is_taken_again(tmp_path: Path) -> None:
    sacct = Sacct()
    first = shared_answer([12, "13"], 0.5, sacct, tmp_path)
    assert shared_answer(["13", 12], 0.5, sacct, tmp_path) == first == "answer 1\n"
    assert shared_answer([12], 0.5, sacct, tmp_path) == "answer 2\n"  # other jobs: their own
    time.sleep(0.6)
    assert shared_answer([12, 13], 0.5, sacct, tmp_path) == "answer 3\n"  # too old: asked
    assert shared_answer([12, 13], 0, sacct, tmp_path) == "answer 4\n"  # max_age 0: asked


WATCHER = """
import sys, time
from pathlib import Path
from paddle_hpc.slurm.shared import shared_answer

def sacct():
    with open(sys.argv[2], "a") as calls:
        calls.write("call\\n")
    time.sleep(0.5)
    return "the answer\\n"

print(shared_answer([7, 8], 10, sacct, Path(sys.argv[1])), end="")
"""


def test_watchers_that_find_it_stale_wait_for_the_one_that_calls(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    watchers = [
        subprocess.Popen(
            [sys.executable, "-c", WATCHER, str(tmp_path / "cache"), str(calls)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    answers = [w.communicate(timeout=60)[0] for w in watchers]
    assert answers == ["the answer\n"] * 3 and calls.read_text() == "call\n"


def test_old_answers_are_removed(tmp_path: Path) -> None:
    shared_answer([1], 10, Sacct(), tmp_path)
    (old,) = tmp_path.glob("*.txt")
    long_ago = time.time() - KEEP_S - 60
    os.utime(old, (long_ago, long_ago))
    shared_answer([2], 10, Sacct(), tmp_path)
    assert not old.exists() and not old.with_suffix(".lock").exists()
    assert len(list(tmp_path.glob("*.txt"))) == 1


def test_a_cache_folder_that_cannot_be_written_means_asking(tmp_path: Path) -> None:
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    sacct = Sacct()
    assert shared_answer([1], 10, sacct, blocked / "sacct") == "answer 1\n"
    assert shared_answer([1], 10, sacct, blocked / "sacct") == "answer 2\n"
