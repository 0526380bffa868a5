"""Cost and wait on the test cluster: the GPU-hours guard, retries that ask for more,
and why pending runs wait."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from paddle_hpc.collect import load as load_tables
from paddle_hpc.core.manifest import load
from paddle_hpc.core.runstate import ENDED
from tests.cluster import charged_by_sacct
from tests.test_lifecycle_cluster import wait_for
from tests.test_sweep_cluster import queued_jobs, run_module, sweep, write_conf

pytestmark = pytest.mark.slurm


def test_a_sweep_over_its_gpu_hours_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('never runs')\n")
    write_conf(
        tmp_path,
        json.dumps(
            {
                "program": {"script": "train.py"},
                "resources": {"nodes": 2, "gpus_per_node": 2, "time": "30"},
                "sweep": {"name": "costly", "grid": {"+x": "range(3)"}, "max_gpu_hours": 5},
            }
        ),
    )
    before = queued_jobs()
    dry = sweep(tmp_path, "--dry-run", "sweep.max_gpu_hours=null")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert (
        "# the sweep asks for at most 6.00 GPU-hours (3 task(s) x 2 node(s) x 2 GPU(s)"
        in dry.stdout
    )
    refused = sweep(tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    said = refused.stdout + refused.stderr
    assert "sweep.max_gpu_hours is 5, and the sweep asks for at most 6.00 GPU-hours" in said
    assert not (tmp_path / "sweeps").exists() and queued_jobs() == before
    fits = sweep(tmp_path, "--dry-run", "resources.time=20")  # 4 GPU-hours
    assert fits.returncode == 0 and "at most 4.00 GPU-hours" in fits.stdout


HUNGRY = """\
import time
block = bytearray(900 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
time.sleep(1)
print("done", flush=True)
"""


def test_a_run_out_of_memory_is_retried_with_more_and_completes(tmp_path: Path) -> None:
    """By hand with `retry`, and then by itself: the node submits the retry, grown,
    before its task ends."""
    (tmp_path / "hungry.py").write_text(HUNGRY)
    write_conf(
        tmp_path,
        json.dumps(
            {
                "program": {"script": "hungry.py"},
                # the launcher and the node runner take a few hundred MB of it
                "resources": {"time": "5", "mem": "1000M"},
                "sweep": {"name": "hungry", "retry_grow": {"mem": 2, "max_mem": "3G"}},
            }
        ),
    )
    assert sweep(tmp_path).returncode == 0
    sweep_dir = tmp_path / "sweeps" / "hungry"
    (run,) = load(sweep_dir).runs
    assert wait_for(sweep_dir, lambda s: s[run.run_id] in ENDED)[run.run_id] == "OUT_OF_MEMORY"
    state = json.loads((sweep_dir / "runs" / run.run_id / "state.json").read_text())
    assert "out-of-memory killer ended" in state["reason"] and "1000M" in state["reason"]
    (error,) = load_tables(sweep_dir).errors.itertuples()
    assert error.kind == "OOM" and "error: Detected 1 oom-kill event" in error.tail, error.tail
    retried = run_module("paddle_hpc.retry", str(sweep_dir))
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert f"{run.run_id} asks for more: mem 1000M -> 2000M" in retried.stdout
    assert wait_for(sweep_dir, lambda s: s[run.run_id] in ENDED)[run.run_id] == "COMPLETED"
    charged_twice(sweep_dir)

    grows = ("sweep.name=hungry-retried", "sweep.retry_on=[OUT_OF_MEMORY]", "sweep.max_retries=1")
    automatic = sweep(tmp_path, *grows)
    assert automatic.returncode == 0, automatic.stdout + automatic.stderr
    retried_dir = tmp_path / "sweeps" / "hungry-retried"
    (run,) = load(retried_dir).runs
    assert wait_for(retried_dir, lambda s: s[run.run_id] in ENDED)[run.run_id] == "COMPLETED"
    charged_twice(retried_dir)
    state = json.loads(
        (retried_dir / "runs" / run.run_id / "attempts" / "1" / "state.json").read_text()
    )
    assert state["reason"] == "resubmitted with more (sweep.retry_grow) for another attempt"


def charged_twice(sweep_dir: Path) -> None:
    """The run's second submission asked for 2000M and completed; both are charged."""
    again = load(sweep_dir)
    assert again.shapes[again.runs[0].shape]["resources"]["mem"] == "2000M"
    first = f"{again.runs[0].submissions[0].job_id}_0"
    assert again.runs[0].submissions[0].state == "OUT_OF_MEMORY"
    # both submissions are charged, as sacct counts them
    _, cpu_hours, allocations = charged_by_sacct([first, again.runs[0].job])
    tables = load_tables(sweep_dir)
    assert allocations == 2 and tables.runs["cpu_hours"].tolist() == pytest.approx([cpu_hours])
    assert tables.runs["history"].tolist() == ["OUT_OF_MEMORY"]
    assert tables.runs["req_mem_mb"].tolist() == [2000.0]


def test_status_says_when_pending_runs_start_and_flags_a_reason_that_never_clears(
    tmp_path: Path,
) -> None:
    (tmp_path / "train.py").write_text("print('ran')\n")
    write_conf(
        tmp_path,
        json.dumps(
            {
                "program": {"script": "train.py"},
                "resources": {"time": "10"},  # 'limited' allows 5 minutes (slurm/up)
                "sweep": {"name": "waiting", "grid": {"+x": "1,2"}},
            }
        ),
    )
    busy = ["-N", "2", "--exclusive", "-t", "3", "-o", "/dev/null", "--wrap", "sleep 170"]
    blocker = subprocess.run(  # both nodes busy for three minutes
        ["sbatch", "--parsable", *busy], capture_output=True, text=True, check=True
    ).stdout.strip()
    waiting, over = tmp_path / "sweeps" / "waiting", tmp_path / "sweeps" / "over"
    try:
        assert sweep(tmp_path).returncode == 0
        assert sweep(tmp_path, "sweep.name=over", "resources.account=limited").returncode == 0
        deadline = time.monotonic() + 90  # the backfill pass plans a start every 30 s
        while True:
            shown = run_module("paddle_hpc.status", str(waiting))
            if "Slurm expects the first to start at" in shown.stdout:
                break
            assert time.monotonic() < deadline, shown.stdout + shown.stderr
            time.sleep(5)
        assert "pending: 2 run(s), waiting for " in " ".join(shown.stdout.split())
        flagged = " ".join(run_module("paddle_hpc.status", str(over)).stdout.split())
        run_ids = ", ".join(r.run_id for r in load(over).runs)
        assert (
            "2 run(s) wait for AssocMaxWallDurationPerJobLimit, which does not clear by "
            "itself: they ask for a longer time limit than your association allows a job; "
            f"lower resources.time ({run_ids})" in flagged
        ), flagged
        record = json.loads(run_module("paddle_hpc.status", str(over), "--json").stdout)
        limit = {"reason": "AssocMaxWallDurationPerJobLimit", "start": None}
        assert list(record["pending"].values()) == [limit, limit]
    finally:
        jobs = [str(a.job_id) for d in (waiting, over) if d.exists() for a in load(d).arrays]
        subprocess.run(["scancel", blocker, *jobs], check=False)


def test_a_shape_goes_to_the_partition_where_it_starts_first(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('ran')\n")
    write_conf(
        tmp_path,
        json.dumps(
            {
                "program": {"script": "train.py"},
                "resources": {"time": "5", "partition": "left,right"},
                "sweep": {"name": "where", "earliest_partition": True},
            }
        ),
    )
    busy = ["-p", "left", "--exclusive", "-t", "3", "-o", "/dev/null", "--wrap", "sleep 170"]
    blocker = subprocess.run(  # n1, the one node of partition left, busy for 3 minutes
        ["sbatch", "--parsable", *busy], capture_output=True, text=True, check=True
    ).stdout.strip()
    sweep_dir = tmp_path / "sweeps" / "where"
    try:
        dry = sweep(tmp_path, "--dry-run")
        said = dry.stdout
        assert dry.returncode == 0, said + dry.stderr
        assert "# shape 0 would start at " in said and " in partition left on n1" in said
        assert "in partition right on n2 (the earliest)" in said, said
        assert "# shape 0 goes to partition right, where it starts first" in said
        assert "#SBATCH --partition=right" in said
        done = sweep(tmp_path, "--wait")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "shape 0 goes to partition right" in done.stdout
        (run,) = load(sweep_dir).runs
        partition = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-o", "Partition", "-j", run.job],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert partition == ["right"]
    finally:
        subprocess.run(["scancel", blocker], check=False)
