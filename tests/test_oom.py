"""The node's out-of-memory check, fed literal /proc/<pid>/cgroup text and cgroup files
laid out as the test cluster's task/cgroup makes them."""

from __future__ import annotations

from pathlib import Path

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
