"""The Hydra launcher plugin: an unchanged Hydra app (tests/hydra_app) swept through
`hydra/launcher=paddle_hpc`, with Hydra's own basic launcher as the oracle of which
jobs run with which values."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.manifest import load
from paddle_hpc.integrations.hydra_launcher import PaddleHpcLauncherConf, hydra_plan, quoted
from tests.cluster import run_logs

APP = Path(__file__).parent / "hydra_app" / "train.py"
SWEPT = ["optim.lr=0.5,0.25", "data.batch_size=8,16"]
SAW = re.compile(r"rank 0 of (\d+): lr=(\S+) batch_size=(\S+)")


def test_quoted_values_parse_back() -> None:
    assert quoted("/scratch/ana/sweeps/runs/r1") == "/scratch/ana/sweeps/runs/r1"
    assert quoted("/tmp/a b/it's") == "'/tmp/a b/it\\'s'"


def test_a_plan_of_hydras_jobs(tmp_path: Path) -> None:
    jobs = [
        ["optim.lr=0.5", "+tag='a b $(id)'", "db=mysql"],
        ["optim.lr=0.25", "+tag='a b $(id)'", "db=mysql"],
    ]
    conf = PaddleHpcLauncherConf(nodes=2, gpus_per_node=2, executor="local")
    plan = hydra_plan(conf, APP, tmp_path, tmp_path / "multirun", "train", jobs)
    assert [r.swept for r in plan.runs] == [{"optim.lr": "0.5"}, {"optim.lr": "0.25"}]
    assert len({r.run_id for r in plan.runs}) == 2
    first = plan.runs[0].config
    assert first["program"]["args"][:3] == jobs[0]  # each override one argument, unchanged
    assert first["program"]["script"] == str(APP)
    assert first["resources"]["nodes"] == 2 and first["sweep"]["dir"] == str(tmp_path / "multirun")
    with pytest.raises(PaddleHpcError, match=r"hydra\.launcher: resources\.nodes is 0"):
        hydra_plan(PaddleHpcLauncherConf(nodes=0), APP, tmp_path, tmp_path / "m", "t", jobs)


def multirun(cwd: Path, *overrides: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(APP), "-m", *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slurm
def test_an_unchanged_hydra_app_sweeps_on_two_nodes(tmp_path: Path) -> None:
    basic = multirun(tmp_path, *SWEPT, f"hydra.sweep.dir={tmp_path / 'basic'}")
    assert basic.returncode == 0, basic.stderr
    expected = {(lr, bs) for _, lr, bs in SAW.findall(basic.stdout)}
    assert len(expected) == 4  # Hydra's own launcher ran the 2x2 grid

    sweep_dir = tmp_path / "multirun"
    ours = [
        "hydra/launcher=paddle_hpc",
        "hydra.launcher.nodes=2",
        "hydra.launcher.gpus_per_node=2",
        *SWEPT,
        f"hydra.sweep.dir={sweep_dir}",
    ]
    queued = multirun(tmp_path, *ours)  # returns once the arrays are queued
    assert queued.returncode == 0, queued.stderr
    manifest = load(sweep_dir)
    assert len(manifest.runs) == 4 and len(manifest.arrays) == 1
    waited = multirun(tmp_path, *ours, "hydra.launcher.wait=true")  # the same, waiting
    assert waited.returncode == 0, waited.stderr + run_logs(sweep_dir)
    assert "0 run(s)" in waited.stderr  # nothing submitted twice

    seen = set()
    for run in load(sweep_dir).runs:
        run_dir = sweep_dir / "runs" / run.run_id
        assert json.loads((run_dir / "state.json").read_text())["state"] == "COMPLETED"
        rank0 = (run_dir / "logs" / "node0" / "workerlog.0").read_text()
        ((world, lr, bs),) = SAW.findall(rank0)
        assert world == "4" and "rank 3 of 4" in (run_dir / "logs/node1/workerlog.1").read_text()
        seen.add((lr, bs))
        value = pickle.loads((run_dir / "return.pkl").read_bytes())
        assert value == pytest.approx(float(lr) * int(bs))
        assert run.swept == {"optim.lr": lr, "data.batch_size": bs}
    assert seen == expected

    for verb in ("status", "collect"):
        done = subprocess.run(
            [sys.executable, "-m", f"paddle_hpc.{verb}", str(sweep_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "COMPLETED 4" in done.stdout
