"""The node's out-of-memory check, fed literal /proc/<pid>/cgroup text and cgroup files
laid out as the test cluster's task/cgroup makes them; and what a node does with a run
that ran out of memory (sweep.retry_grow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paddle_hpc.core import runstate
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.layout import RunDir
from paddle_hpc.core.runstate import RunState
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node.ending import launcher_ended
from paddle_hpc.node.launch import NodeLaunch
from paddle_hpc.node.oom import counter, memory_cgroups, oom_kills

V1 = """\
9:name=systemd:/
4:memory:/slurm_n1/uid_0/job_236/step_0/task_0
1:cpu:/
0::/
"""


def test_the_cgroups_of_a_slurm_task_up_to_its_job(tmp_path: Path) -> None:
    found = memory_cgroups(V1, tmp_path)
    base = tmp_path / "memory" / "slurm_n1" / "uid_0" / "job_236"
    assert found == [base / "step_0" / "task_0", base / "step_0", base]


def test_outside_slurm_only_the_process_own_cgroup(tmp_path: Path) -> None:
    found = memory_cgroups("4:memory:/user.slice/session-3.scope\n", tmp_path)
    assert found == [tmp_path / "memory" / "user.slice" / "session-3.scope"]
    v2 = memory_cgroups("0::/system.slice/slurmstepd.scope/job_9/step_0/user/task_0\n", tmp_path)
    assert v2[0] == tmp_path / "system.slice/slurmstepd.scope/job_9/step_0/user/task_0"
    assert v2[-1].name == "job_9"
    assert memory_cgroups("1:cpu:/\n", tmp_path) == []


def test_the_kills_counted_by_v1_and_v2(tmp_path: Path) -> None:
    task = tmp_path / "task_0"
    job = tmp_path / "job_1"
    task.mkdir()
    job.mkdir()
    assert oom_kills([task, job]) == 0  # nothing to read: nothing counted
    (task / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    (job / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n")
    assert oom_kills([task, job]) == 2
    assert counter("oom_kill x\noom_kill_disable 1\n", "oom_kill") == 0


GROWS = {
    "resources": {"mem": "1000M"},
    "sweep": {"retry_on": ["OUT_OF_MEMORY"], "max_retries": 2, "retry_grow": {"mem": 2}},
}


@pytest.mark.parametrize(
    ("config", "history", "resubmitted", "requeued"),
    [
        (GROWS, (), 1, 0),  # grown: submitted again with more, not requeued
        (GROWS, ("OUT_OF_MEMORY", "PREEMPTED"), 1, 0),
        (GROWS, ("OUT_OF_MEMORY", "OUT_OF_MEMORY"), 0, 0),  # both retries used
        ({**GROWS, "sweep": {**GROWS["sweep"], "retry_grow": {"mem": 1}}}, (), 0, 1),
        ({**GROWS, "sweep": {"retry_on": ["FAILED"], "max_retries": 2}}, (), 0, 0),
    ],
)
def test_an_oom_run_is_resubmitted_grown_or_requeued_or_ends(
    tmp_path: Path,
    config: dict[str, Any],
    history: tuple[str, ...],
    resubmitted: int,
    requeued: int,
) -> None:
    run = RunDir(tmp_path / "runs" / "r1")
    run.path.mkdir(parents=True)
    base = RunState("RUNNING", attempt=3, job="7_0", history=history)
    node = NodeLaunch((), {}, "cpu", "127.0.0.1:1", 0, 1, 1, run.logs / "node0")
    asked: list[RunState] = []
    jobs: list[str] = []

    def resubmit(state: RunState) -> str | None:
        asked.append(state)
        return None

    with pytest.raises(PaddleHpcError, match="exited with code 137"):
        launcher_ended(run, node, base, 137, None, RunConfig.of(config), jobs.append, 1, resubmit)
    ended = runstate.read(run.state)
    assert ended is not None and ended.state == "OUT_OF_MEMORY"
    assert (len(asked), len(jobs)) == (resubmitted, requeued)
    assert ended.retrying is bool(resubmitted or requeued)
    if resubmitted:
        assert ended.reason == "resubmitted with more (sweep.retry_grow) for another attempt"
        assert asked[0].attempt == 3 and asked[0].state == "OUT_OF_MEMORY"


def test_a_retry_that_cannot_be_submitted_ends_the_run_and_says_why(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "runs" / "r1")
    run.path.mkdir(parents=True)
    base = RunState("RUNNING", attempt=1, job="7_0")
    node = NodeLaunch((), {}, "cpu", "127.0.0.1:1", 0, 1, 1, run.logs / "node0")
    with pytest.raises(PaddleHpcError):
        launcher_ended(
            run,
            node,
            base,
            137,
            None,
            RunConfig.of(GROWS),
            lambda job: None,
            1,
            lambda state: "sbatch: error: Batch job submission failed",
        )
    ended = runstate.read(run.state)
    assert ended is not None and (ended.state, ended.retrying) == ("OUT_OF_MEMORY", False)
    assert ended.reason == (
        "OUT_OF_MEMORY: its retry with more could not be submitted: "
        "sbatch: error: Batch job submission failed"
    )
