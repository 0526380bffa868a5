"""The sweep end to end, as a user runs it: the real CLI, on the real test cluster."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from paddle_hpc.backend.charges import hours
from paddle_hpc.collect import load as load_tables
from paddle_hpc.core.disk import disk_use
from paddle_hpc.core.manifest import load
from paddle_hpc.slurm import SlurmClient
from tests.cluster import charged_by_sacct
from tests.test_interactive_browser import open_in_chromium

UGLY = "a b 'c' \"d\" $(touch pwned) `id`; x"


def sweep(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paddle_hpc.sweep", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, check=False
    )


def queued_jobs() -> list[str]:
    return subprocess.run(
        ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True
    ).stdout.split()


def write_conf(folder: Path, body: str) -> Path:
    conf = folder / "conf"
    conf.mkdir(parents=True)
    (conf / "config.yaml").write_text(body)
    return conf


@pytest.mark.slurm
def test_example_grid_runs_two_nodes_by_two_gpus(tmp_path: Path) -> None:
    result = sweep(tmp_path, "--wait", "train.epochs=2")
    assert result.returncode == 0, result.stdout + result.stderr
    sweep_dir = tmp_path / "sweeps" / "digits"
    manifest = load(sweep_dir)
    assert manifest.state == "submitted" and len(manifest.runs) == 4 and len(manifest.arrays) == 1
    assert "COMPLETED 4" in result.stdout
    for run in manifest.runs:
        run_dir = sweep_dir / "runs" / run.run_id
        assert "rank 0 of world size 4" in (run_dir / "logs" / "node0" / "workerlog.0").read_text()
        assert "rank 3 of world size 4" in (run_dir / "logs" / "node1" / "workerlog.1").read_text()
        lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [line["step"] for line in lines] == [0, 1] and all("acc" in line for line in lines)

    collected = run_module("paddle_hpc.collect", str(sweep_dir), "--sort", "final.acc")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "COMPLETED 4" in collected.stdout and "best 4 by final.acc" in collected.stdout
    tables = load_tables(sweep_dir)
    runs = tables.runs
    assert runs["optim.lr"].tolist() == [0.003, 0.003, 0.03, 0.03]
    assert runs["data.batch_size"].tolist() == [32, 128, 32, 128]
    assert (runs["state"] == "COMPLETED").all() and (runs["nodelist"] == "n1,n2").all()
    assert runs["final.acc"].between(0, 1).all() and runs["final.loss"].notna().all()
    assert (runs["elapsed_s"] > 0).all() and (runs["exit_code"] == 0).all()
    steps = tables.metrics[tables.metrics["name"] == "acc"].groupby("run_id", observed=True)["step"]
    assert steps.apply(list).tolist() == [[0, 1]] * 4  # every logged epoch
    assert (sweep_dir / "sacct.txt").exists() and tables.errors.empty
    # what the runs were charged, by sacct's own figures, and what they used
    gpu_hours, cpu_hours, allocations = charged_by_sacct([r.job for r in manifest.runs])
    assert allocations == 4 and gpu_hours > 0
    assert runs["gpu_hours"].sum() == pytest.approx(gpu_hours)
    assert runs["cpu_hours"].sum() == pytest.approx(cpu_hours)
    assert (runs["cpu_efficiency"] > 0).all() and (runs["max_rss_mb"] > 50).all()
    assert (runs["time_limit_min"] == 10).all() and runs["req_mem_mb"].notna().all()
    cost = run_module("paddle_hpc.cost", str(sweep_dir))
    assert cost.returncode == 0, cost.stdout + cost.stderr
    assert f"charged: {hours(gpu_hours)} GPU-hours, {hours(cpu_hours)} CPU-hours" in cost.stdout
    assert "the sweep asks for at most 2.67 GPU-hours" in cost.stdout  # 4 x 2 x 2 x 10 min
    # what fits, from the 4 runs: minutes and a peak of a few hundred MB a node
    assert "fit: resources.time=0-00:05:00 resources.mem=" in cost.stdout
    report = run_module("paddle_hpc.report", str(sweep_dir))
    assert report.returncode == 0, report.stdout + report.stderr
    assert open_in_chromium(sweep_dir / "report" / "index.html", tmp_path / "report.png") >= 4
    fitted = sweep(tmp_path, "--dry-run", "--fit-from", str(sweep_dir), "sweep.name=next")
    assert fitted.returncode == 0, fitted.stdout + fitted.stderr
    assert "#SBATCH --time=5" in fitted.stdout and "#SBATCH --mem=" in fitted.stdout

    # clean: each ended 2-node run in 6 files and folders besides the checkpoints it
    # keeps (the example saves one per epoch), and read as before
    cleaned = run_module("paddle_hpc.clean", str(sweep_dir))
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    for run in manifest.runs:
        run_dir = sweep_dir / "runs" / run.run_id
        assert sorted(p.name for p in run_dir.iterdir()) == [
            "checkpoints",
            "collected-node0.arrow",  # node 0's rows; node 1's went with its logs
            "config.yaml",
            "logs.zip",
            "metrics.jsonl",
            "state.json",
        ]
        assert disk_use(run_dir).inodes - disk_use(run_dir / "checkpoints").inodes == 6
    task_files = [p.name for p in (sweep_dir / "slurm").glob(f"{run.job_id}_*_*")]
    assert task_files == []  # each task's output and pickles: archived or removed
    recollected = run_module("paddle_hpc.collect", str(sweep_dir))
    assert recollected.returncode == 0, recollected.stderr
    again = load_tables(sweep_dir)
    assert again.runs["final.acc"].tolist() == runs["final.acc"].tolist()
    assert len(again.metrics) == len(tables.metrics) and again.errors.empty
    rank3 = run_module("paddle_hpc.logs", str(sweep_dir), run.run_id, "--rank", "3")
    assert "rank 3 of world size 4" in rank3.stdout, rank3.stdout + rank3.stderr
    err = run_module("paddle_hpc.logs", str(sweep_dir), run.run_id, "--node", "1", "--err")
    assert err.returncode == 0 and "logs.zip/slurm/" in err.stdout, err.stdout + err.stderr

    # the README's next step: how it was submitted (`make demo`'s executor) names no run
    more = sweep(tmp_path, "--dry-run", "train.epochs=2", "optim.lr=0.003,0.03,0.3")
    assert more.returncode == 0, more.stderr
    assert "# dry run: 6 run(s) (2 new, 4 already in the sweep)" in more.stdout
    for run in manifest.runs:
        assert f"#   {run.run_id}  already" in more.stdout


FAIL_ON_RANK_1 = """\
import os, time
if os.environ["PADDLE_TRAINER_ID"] == "1":
    raise RuntimeError("rank 1 gives up")
time.sleep(300)  # rank 0 would wait here for ever if the failure did not end the task
"""


@pytest.mark.slurm
def test_a_failing_rank_fails_its_task_instead_of_hanging(tmp_path: Path) -> None:
    (tmp_path / "fail.py").write_text(FAIL_ON_RANK_1)
    write_conf(
        tmp_path,
        "program: {script: fail.py}\nresources: {nodes: 2, gpus_per_node: 1}\n"
        "sweep: {name: failing}\n",
    )
    result = sweep(tmp_path, "--wait", timeout=240)
    assert result.returncode == 1 and "FAILED 1" in result.stdout, result.stdout + result.stderr
    manifest = load(tmp_path / "sweeps" / "failing")
    (record,) = SlurmClient().sacct([manifest.arrays[0].job_id])
    assert record.state == "FAILED" and record.exit_code != 0
    state = json.loads(
        (
            tmp_path / "sweeps" / "failing" / "runs" / manifest.runs[0].run_id / "state.json"
        ).read_text()
    )
    assert state["state"] == "FAILED" and state["returncode"] != 0

    errors = load_tables(tmp_path / "sweeps" / "failing").errors
    raised = errors[errors["kind"] == "RuntimeError"]
    assert len(raised) == 1, errors
    assert (raised["node"].iloc[0], raised["message"].iloc[0]) == (1, "rank 1 gives up")
    assert (raised["rank"].iloc[0], raised["local_rank"].iloc[0]) == (1, 0)  # global, local
    assert raised["log"].iloc[0].endswith("logs/node1/workerlog.0")
    runs = load_tables(tmp_path / "sweeps" / "failing").runs
    assert runs["exit_code"].tolist() == [state["returncode"]]  # the script's, not Slurm's
    assert runs["slurm_exit_code"].tolist() == [record.exit_code]


ECHO_ARGV = """\
import json, os, sys
with open(os.path.join(os.environ["PADDLE_HPC_RUN_DIR"], "argv.json"), "w") as f:
    json.dump(sys.argv[1:], f)
"""


@pytest.mark.slurm
def test_values_and_paths_with_quotes_spaces_and_substitutions_arrive_literally(
    tmp_path: Path,
) -> None:
    cwd = tmp_path / "dir with 'q' \"dq\" $(x)"
    cwd.mkdir()
    (cwd / "echo argv.py").write_text(ECHO_ARGV)
    conf = write_conf(
        cwd,
        json.dumps(
            {
                "program": {"script": "echo argv.py", "args": ["--note", "${note}", "plain"]},
                "note": UGLY,
                "resources": {"nodes": 1},
                "sweep": {"name": "ugly", "grid": {"+tag": [UGLY, "b"]}},
            }
        ),
    )
    result = sweep(cwd, "-cd", str(conf), "--wait", timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    sweep_dir = cwd / "sweeps" / "ugly"
    for run in load(sweep_dir).runs:
        argv = json.loads((sweep_dir / "runs" / run.run_id / "argv.json").read_text())
        assert argv == ["--note", UGLY, "plain"]
    assert not list(tmp_path.rglob("pwned"))


@pytest.mark.slurm
def test_a_grid_past_max_array_size_is_split(tmp_path: Path) -> None:
    (tmp_path / "noop.py").write_text("")
    write_conf(
        tmp_path,
        "program: {script: noop.py}\nsweep: {name: big, max_parallel: 2}\n"
        "resources: {sbatch: {hold: true}}\n",
    )
    result = sweep(tmp_path, "+x=range(0,1003)")
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = load(tmp_path / "sweeps" / "big")
    try:
        assert [len(a.run_ids) for a in manifest.arrays] == [1001, 2]  # MaxArraySize is 1001
        for array in manifest.arrays:
            for task, run_id in enumerate(array.run_ids):
                run = next(r for r in manifest.runs if r.run_id == run_id)
                assert (run.job_id, run.array_task) == (array.job_id, task)
        assert sorted(r.index for r in manifest.runs) == list(range(1003))
        rows = []
        for _ in range(60):  # slurmdbd records a just-submitted array within seconds
            rows = SlurmClient().sacct([a.job_id for a in manifest.arrays])
            if len(rows) == 2:
                break
            time.sleep(0.5)
        assert {r.ref.job: r.ref.tasks for r in rows} == {
            manifest.arrays[0].job_id: tuple(range(1001)),
            manifest.arrays[1].job_id: (0, 1),
        }
        assert all(r.ref.throttle == 2 for r in rows)
    finally:
        SlurmClient().cancel([a.job_id for a in manifest.arrays])


@pytest.mark.slurm
def test_dry_run_submits_nothing(tmp_path: Path) -> None:
    before = queued_jobs()
    result = sweep(tmp_path, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "#SBATCH --array=0-3%4" in result.stdout and "#SBATCH --gpus-per-node=2" in result.stdout
    assert "--nnodes 2 --rank 1 --nproc_per_node 2 --devices 0,1" in result.stdout
    assert not (tmp_path / "sweeps").exists() and queued_jobs() == before


@pytest.mark.slurm
def test_bad_config_fails_before_submission(tmp_path: Path) -> None:
    before = queued_jobs()
    for override, named in [
        ("resources.nodez=2", "nodez"),
        ("resources.nodes=abc", "resources.nodes"),
        ("optim.lr=range(1", "optim.lr=range(1"),
        # what the partition can never give: refused, instead of pending for ever
        ("resources.nodes=5", "resources.nodes is 5, but it has 2 node(s)"),
        ("resources.gpus_per_node=3", "resources.gpus_per_node is 3, but its nodes have at most 2"),
        ("resources.mem=64G", "resources.mem is 64G, but its nodes have at most 8000M"),
        ("resources.partition=nope", "no partition 'nope'; it has debug, left, right, urgent"),
    ]:
        for dry_run in ((), ("--dry-run",)):  # a dry run refuses what a submission refuses
            result = sweep(tmp_path, *dry_run, override)
            assert result.returncode == 1 and named in result.stderr, (dry_run, result.stderr)
            assert "Traceback" not in result.stderr
    assert not (tmp_path / "sweeps").exists() and queued_jobs() == before


def test_without_slurm_the_example_runs_here(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    result = sweep(tmp_path, "optim.lr=0.01", "data.batch_size=64", "train.epochs=1", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no Slurm here" in result.stdout and "COMPLETED 1" in result.stdout
    manifest = load(tmp_path / "sweeps" / "digits")
    assert manifest.executor == "local" and manifest.arrays == ()
    log = (
        tmp_path
        / "sweeps"
        / "digits"
        / "runs"
        / manifest.runs[0].run_id
        / "logs"
        / "node0"
        / "workerlog.0"
    )
    assert "rank 0 of world size 4" in log.read_text()


CHECK_TOKEN = """\
import hashlib, os, sys
for name in ("MY_TOKEN", "API_KEY", "HF_TOKEN"):
    if hashlib.sha256(os.environ[name].encode()).hexdigest() != sys.argv[1]:
        sys.exit(f"{name} did not arrive")
print("rank", os.environ["PADDLE_TRAINER_ID"], "has its secrets")
"""


@pytest.mark.slurm
def test_secrets_reach_the_runs_and_no_file_holds_them(tmp_path: Path) -> None:
    token = "tok-" + os.urandom(8).hex()
    (tmp_path / "check.py").write_text(CHECK_TOKEN)
    digest = hashlib.sha256(token.encode()).hexdigest()
    write_conf(
        tmp_path,
        json.dumps(
            {
                "program": {"script": "check.py", "args": [digest]},
                "launch": {"env": {"API_KEY": "${oc.env:MY_TOKEN}"}},
                "resources": {"nodes": 2},
                "sweep": {"name": "secret", "grid": {"+x": [1, 2]}},
            }
        ),
    )
    env = {**os.environ, "MY_TOKEN": token}
    result = sweep(
        tmp_path, "--wait", "+launch.env.HF_TOKEN=${oc.env:MY_TOKEN}", env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sweep_dir = tmp_path / "sweeps" / "secret"
    assert run_module("paddle_hpc.collect", str(sweep_dir)).returncode == 0
    assert run_module("paddle_hpc.report", str(sweep_dir)).returncode == 0
    logs = list(sweep_dir.rglob("workerlog.*")) + list(sweep_dir.rglob("envlog.*"))
    assert len(logs) >= 8 and any("has its secrets" in p.read_text() for p in logs)
    assert (sweep_dir / "environment.json").exists()
    assert len(list(sweep_dir.rglob("logs/node*/environment.json"))) == 4  # 2 runs x 2 nodes
    holding = [p for p in sweep_dir.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert holding == []
    assert not list(Path(tempfile.gettempdir()).glob("paddle-hpc-*/secrets.json"))
