"""Packing trials into tasks, and CUDA MPS for a task: the pure parts, literal inputs."""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path
from typing import Any

import pytest

from paddle_hpc.core import packing
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.runstate import RunState
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node import mps
from paddle_hpc.node.trials import next_attempt, slot_env, task_devices

GOLDEN = Path(__file__).parent / "golden"


def devices(found: list[packing.Slot]) -> list[tuple[str, ...]]:
    return [s.devices for s in found]


def test_halves_spread_over_every_gpu_first() -> None:
    assert devices(packing.slots(["2", "3"], 0.5)) == [("2",), ("3",), ("2",), ("3",)]
    assert devices(packing.slots(["0"], 0.25)) == [("0",)] * 4
    assert devices(packing.slots(["0"], 0.3)) == [("0",)] * 3  # 3 fit, a fourth would not
    assert devices(packing.slots(["0"], 1 / 3)) == [("0",)] * 3  # 1/(1/3) is 2.999...


def test_whole_gpus_per_trial_split_the_allocation() -> None:
    assert devices(packing.slots(["0", "1", "2", "3"], 2)) == [("0", "1"), ("2", "3")]
    assert devices(packing.slots(["0", "1", "2"], 2)) == [("0", "1")]  # GPU 2 left idle
    assert devices(packing.slots(["0", "1"], 1.0)) == [("0",), ("1",)]


def test_without_a_share_trials_take_turns_on_the_whole_allocation() -> None:
    assert devices(packing.slots(["0", "1"], None)) == [("0", "1")]
    assert devices(packing.slots([], 0.5)) == [()]


def test_pack_keeps_the_order_and_leaves_the_rest_to_a_last_task() -> None:
    assert packing.pack(["a", "b", "c", "d", "e"], 2) == [("a", "b"), ("c", "d"), ("e",)]
    assert packing.pack(["a"], 4) == [("a",)]
    assert packing.pack([], 4) == []


RESOURCES = {"gpus_per_trial": 0.5, "gpus_per_node": 1, "nodes": 1}


@pytest.mark.parametrize(
    ("resources", "per_task", "names"),
    [
        ({**RESOURCES, "nodes": 2}, 4, ["sweep.trials_per_task=4", "resources.nodes=1"]),
        (RESOURCES, 1, ["resources.gpus_per_trial=0.5", "sweep.trials_per_task to 2"]),
        ({**RESOURCES, "gpus_per_node": 0}, 4, ["set resources.gpus_per_node"]),
        ({**RESOURCES, "gpus_per_trial": 1.5}, 4, ["resources.gpus_per_trial is 1.5"]),
        ({**RESOURCES, "gpus_per_trial": 2}, 4, ["up to resources.gpus_per_node (1)"]),
        ({**RESOURCES, "gpus_per_trial": 0}, 4, ["resources.gpus_per_trial is 0"]),
        (RESOURCES, 0, ["sweep.trials_per_task is 0"]),
    ],
)
def test_impossible_packings_are_refused_naming_the_keys(
    resources: dict[str, Any], per_task: int, names: list[str]
) -> None:
    with pytest.raises(ConfigError) as err:
        packing.check(resources, per_task)
    for name in names:
        assert name in str(err.value)


def test_possible_packings_pass() -> None:
    packing.check(RESOURCES, 4)
    packing.check({**RESOURCES, "gpus_per_trial": None, "nodes": 1}, 8)
    packing.check({"gpus_per_trial": None, "gpus_per_node": 0, "nodes": 3}, 1)
    packing.check({"gpus_per_trial": 2, "gpus_per_node": 4, "nodes": 1}, 2)


def state(name: str, attempt: int = 1, **kw: Any) -> RunState:
    return RunState(name, attempt=attempt, **kw)


@pytest.mark.parametrize(
    ("task", "own", "expected"),
    [
        (None, None, ("PENDING", "")),
        ("PENDING", None, ("PENDING", "")),
        ("RUNNING", None, ("PENDING", "waits for a slot in its task")),
        ("RUNNING", state("RUNNING"), ("RUNNING", "")),
        ("RUNNING", state("COMPLETED"), ("COMPLETED", "")),
        ("FAILED", state("COMPLETED"), ("COMPLETED", "")),  # a sibling failed
        ("COMPLETED", state("FAILED", reason="x"), ("FAILED", "x")),
        ("RUNNING", state("FAILED", retrying=True, reason="again"), ("PENDING", "again")),
        ("CANCELLED", None, ("CANCELLED", "its task ended before it started")),
        ("TIMEOUT", state("RUNNING"), ("TIMEOUT", "its task ended while it ran")),
        ("PENDING", state("CANCELLED"), ("CANCELLED", "")),  # cancelled before its task ran
        ("RUNNING", state("COMPLETED", attempt=1), ("COMPLETED", "")),
    ],
)
def test_a_trial_shows_its_own_state_read_with_its_task(
    task: str | None, own: RunState | None, expected: tuple[str, str]
) -> None:
    assert packing.trial_state(task, own, 1) == expected


def test_an_earlier_submission_s_state_does_not_count() -> None:
    assert packing.trial_state("RUNNING", state("FAILED", attempt=1), 2) == (
        "PENDING",
        "waits for a slot in its task",
    )


def test_elapsed_runs_from_the_launch_to_the_last_word() -> None:
    ended = state(
        "COMPLETED", started="2026-01-01T10:00:00+00:00", time="2026-01-01T10:01:05+00:00"
    )
    assert packing.trial_elapsed(ended) == 65
    assert packing.trial_elapsed(state("COMPLETED", started="", time="x")) is None


@pytest.mark.parametrize(
    ("own", "submitted", "expected"),
    [
        (None, 1, 1),
        (state("FAILED", attempt=1), 2, 2),  # `retry` submitted attempt 2
        (state("COMPLETED"), 1, None),
        (state("CANCELLED"), 1, None),
        (state("FAILED"), 1, None),
        (state("RUNNING", attempt=2), 1, 3),  # its task was killed and came back
        (state("PREEMPTED", retrying=True), 1, 2),
        (state("TIMEOUT", retrying=True), 1, 2),  # saved a checkpoint: resumes
        (state("CANCELLED", retrying=True), 1, None),
    ],
)
def test_a_task_that_comes_back_skips_the_trials_that_ended(
    own: RunState | None, submitted: int, expected: int | None
) -> None:
    assert next_attempt(own, submitted) == expected


def test_each_slot_sees_only_its_gpus() -> None:
    env = {"CUDA_VISIBLE_DEVICES": "4,5", "HOME": "/h"}
    assert slot_env(env, packing.Slot(1, ("5",))) == {"CUDA_VISIBLE_DEVICES": "5", "HOME": "/h"}
    assert slot_env({"HOME": "/h"}, packing.Slot(0, ())) == {"HOME": "/h"}


def test_the_task_s_gpus_are_slurm_s_or_counted_from_the_config() -> None:
    config = RunConfig.of({"resources": {"gpus_per_node": 2}})
    assert task_devices({"CUDA_VISIBLE_DEVICES": "6, 7"}, config) == ["6", "7"]
    assert task_devices({}, config) == ["0", "1"]  # a gres without File=


def test_dry_run_lines_show_slots_and_tasks() -> None:
    lines = packing.describe([f"r{i}" for i in range(10)], 4, 1, 0.5)
    assert lines[0] == (
        "10 trials in 3 task(s) of up to 4 (sweep.trials_per_task); each task runs 2 at once "
        "(resources.gpus_per_trial=0.5): slot 0 on GPU 0, slot 1 on GPU 0"
    )
    assert lines[1:] == ["task 0: r0 r1 r2 r3", "task 1: r4 r5 r6 r7", "task 2: r8 r9"]
    many = packing.describe([f"r{i}" for i in range(40)], 2, 0, None)
    assert "runs 1 at once (one at a time): slot 0 on GPU -" in many[0]
    assert many[-1] == "... 12 more task(s)" and len(many) == 10


def test_mps_commands_match_golden_file() -> None:
    cmds = mps.commands(Path("/tmp/job 12345/paddle-hpc-mps-x"))
    text = "\n".join(
        [
            *(f"export {k}={shlex.quote(v)}" for k, v in sorted(cmds.env.items())),
            shlex.join(cmds.start),
            f"echo quit | {shlex.join(cmds.stop)}" if cmds.stop_input == "quit\n" else "?",
        ]
    )
    path = GOLDEN / "mps_commands.txt"
    if os.environ.get("PADDLE_HPC_UPDATE_GOLDEN"):
        path.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == path.read_text(encoding="utf-8")


FAKE_CONTROL = """#!/bin/sh
# what nvidia-cuda-mps-control was asked, one line per call
{ echo "args=$*"; echo "pipe=$CUDA_MPS_PIPE_DIRECTORY"; echo "log=$CUDA_MPS_LOG_DIRECTORY";
  [ -d "$CUDA_MPS_PIPE_DIRECTORY" ] && echo "pipe folder exists";
  [ "$1" = "-d" ] || echo "stdin=$(cat)"; } >> "$MPS_CALLS"
"""


def test_the_daemon_starts_in_the_task_s_own_folder_and_quits_at_the_end(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    control = bin_dir / mps.CONTROL
    control.write_text(FAKE_CONTROL)
    control.chmod(control.stat().st_mode | stat.S_IXUSR)
    calls = tmp_path / "calls.txt"
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "MPS_CALLS": str(calls)}
    with mps.daemon(True, env) as given:  # the program is looked up on env's PATH
        pipe = Path(given["CUDA_MPS_PIPE_DIRECTORY"])
        assert pipe.is_dir() and pipe.parent.name.startswith("paddle-hpc-mps-")
        assert calls.read_text().splitlines()[0] == "args=-d"
    lines = calls.read_text().splitlines()
    assert lines.count("pipe folder exists") == 2 and f"pipe={pipe}" in lines
    assert lines[-1] == "stdin=quit" and "args=" in lines  # the second call: no arguments
    assert not pipe.parent.exists()  # the task's folder is gone


def test_without_the_control_program_trials_run_without_mps(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path)}  # no nvidia-cuda-mps-control there
    with mps.daemon(True, env) as given:
        assert given == {}
    with mps.daemon(False, env) as given:
        assert given == {}
