"""The Slurm seam against the real test cluster (slurm/up)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from paddle_hpc.core.errors import SlurmRejectedError, SlurmUnavailableError, UnknownJobError
from paddle_hpc.core.runstate import SLURM_ENDED
from paddle_hpc.slurm import SacctRecord, SlurmClient, SubprocessRunner

pytestmark = pytest.mark.slurm


def wait_for_job(
    client: SlurmClient, job: int, tasks: tuple[int, ...] = (), timeout_s: float = 120
) -> None:
    """Polls sacct until the job, or each of the array's `tasks`, has a row that has ended.

    sacct lags the controller: an array's unstarted tasks share one collapsed PENDING
    row, and for a moment after the last task ends the array's record reads as a plain
    `12 COMPLETED` row while the other tasks' records are not in the database yet.
    """
    deadline, delay = time.monotonic() + timeout_s, 0.5
    while time.monotonic() < deadline:
        ended = {r.ref.task for r in client.sacct([job]) if r.state in SLURM_ENDED}
        if ended >= (set(tasks) or {None}):
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)
    raise AssertionError(f"job {job} did not finish within {timeout_s}s")


def by_task(rows: list[SacctRecord]) -> dict[int | None, SacctRecord]:
    return {row.ref.task: row for row in rows}


def test_array_of_two_multi_node_gpu_tasks(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    out.mkdir()
    script = tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n"
        "srun --ntasks-per-node=1 bash -c "
        '\'echo "$SLURMD_NODENAME $CUDA_VISIBLE_DEVICES" '
        f"> {out}/task$SLURM_ARRAY_TASK_ID.node$SLURM_NODEID'\n"
    )
    client = SlurmClient()
    job = client.submit(
        script,
        {"array": "0-1", "nodes": 2, "gres": "gpu:2", "output": f"{tmp_path}/%A_%a.out"},
    )
    wait_for_job(client, job, tasks=(0, 1))

    rows = by_task(client.sacct([job]))  # one sacct call for every task
    assert set(rows) == {0, 1}
    for task, row in rows.items():
        assert row.ref.job == job
        assert row.state == "COMPLETED" and row.exit_code == 0, row
        assert row.nodes == ("n1", "n2")
        seen = {p.name: p.read_text().split() for p in out.glob(f"task{task}.node*")}
        assert seen == {f"task{task}.node0": ["n1", "0,1"], f"task{task}.node1": ["n2", "0,1"]}


def test_values_reach_slurm_literally(tmp_path: Path) -> None:
    ugly = "a b 'c' \"d\" $(touch pwned) `id`; x"
    folder = tmp_path / "dir with 'quotes' $(x)"
    folder.mkdir()
    script = folder / "job.sh"
    script.write_text('#!/bin/bash\nprintf %s "$SLURM_JOB_NAME" > name\n')
    client = SlurmClient()
    job = client.submit(
        script, {"job-name": ugly, "output": f"{folder}/%j.out", "chdir": str(folder)}
    )
    wait_for_job(client, job)
    assert (folder / "name").read_text() == ugly
    assert not (tmp_path / "pwned").exists() and not (folder / "pwned").exists()


def test_rejected_option_is_a_typed_error(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\ntrue\n")
    with pytest.raises(SlurmRejectedError) as info:
        SlurmClient().submit(script, {"partition": "no-such-partition"})
    assert "invalid partition" in info.value.slurm_message.lower()
    with pytest.raises(SlurmRejectedError, match="Invalid job array specification"):
        SlurmClient().submit(script, {"array": "0-5000"})  # past MaxArraySize


def test_unknown_job_id_is_a_typed_error() -> None:
    with pytest.raises(UnknownJobError, match="Invalid job id specified"):
        SlurmClient().cancel([987654321])


def test_max_array_size_is_read_from_the_cluster() -> None:
    assert SlurmClient().max_array_size() == 1001


def test_a_cluster_that_is_down_is_a_typed_error(tmp_path: Path) -> None:
    # The real client tools, pointed at a controller port where nothing listens.
    conf = tmp_path / "slurm.conf"
    conf.write_text(
        "ClusterName=gone\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=9\n"
        "NodeName=x CPUs=1\nPartitionName=p Nodes=x\n"
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    client = SlurmClient(SubprocessRunner(timeout_s=60, env=env))
    with pytest.raises(SlurmUnavailableError, match="Unable to contact slurm controller"):
        client.show_config()
    assert client.ping() is False
