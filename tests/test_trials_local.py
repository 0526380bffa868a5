"""A packed task's trials, run here through Paddle's real launcher (no Slurm).

Two trials share GPU "0" (resources.gpus_per_trial=0.5, the CPU build): each runs two
ranks that all_reduce over gloo, at the same time as the other, so each needs a group
of its own. A third trial fails once and runs again in its slot; a fourth was cancelled
before the task started it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from paddle_hpc.core import runstate
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.runstate import RunState
from paddle_hpc.node.trials import run_trials

TRIAL = """\
import json, os, sys, time
import paddle, paddle.distributed as dist
dist.init_parallel_env()
if sys.argv[1] == "flaky" and os.environ["PADDLE_HPC_ATTEMPT"] == "1":
    raise RuntimeError("fails on its first attempt")
x = paddle.to_tensor([float(dist.get_rank() + 1)])
dist.all_reduce(x)
time.sleep(3)
if dist.get_rank() == 0:
    out = os.path.join(os.environ["PADDLE_HPC_RUN_DIR"], "out.json")
    with open(out, "w") as f:
        json.dump({"sum": float(x.numpy()[0]), "world": dist.get_world_size()}, f)
"""


def config(tmp_path: Path, arg: str) -> str:
    return yaml.safe_dump(
        {
            "program": {"script": str(tmp_path / "trial.py"), "args": [arg]},
            "resources": {"nodes": 1, "gpus_per_node": 1, "gpus_per_trial": 0.5},
            "launch": {"nproc_per_node": 2},
            "sweep": {"max_retries": 1, "trials_per_task": 4},
        }
    )


def test_packed_trials_run_side_by_side_each_in_its_own_group(tmp_path: Path) -> None:
    (tmp_path / "trial.py").write_text(TRIAL)
    sweep = tmp_path / "sweep"
    names = {"a": "ok", "b": "ok", "c": "flaky", "d": "ok"}
    for run_id, arg in names.items():
        (sweep / "runs" / run_id).mkdir(parents=True)
        (sweep / "runs" / run_id / "config.yaml").write_text(config(tmp_path, arg))
    runstate.write(sweep / "runs/d/state.json", RunState(runstate.CANCELLED, attempt=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PADDLE_"))} | {
        "CUDA_VISIBLE_DEVICES": "0",  # what Slurm gives the task: one GPU
        "SLURM_ARRAY_JOB_ID": "999",  # a task of an array: a failed trial may run again
        "SLURM_ARRAY_TASK_ID": "0",
    }

    run_trials(sweep, [(r, 1) for r in names], sys.executable, env, cuda=False)

    states = {r: runstate.read(sweep / "runs" / r / "state.json") for r in names}
    assert {r: s.state for r, s in states.items() if s} == {
        "a": "COMPLETED",
        "b": "COMPLETED",
        "c": "COMPLETED",
        "d": "CANCELLED",
    }
    outs = {r: json.loads((sweep / "runs" / r / "out.json").read_text()) for r in "abc"}
    assert all(o == {**o, "sum": 3.0, "world": 2} for o in outs.values())  # 1 + 2, per trial
    a, b = states["a"], states["b"]
    assert a is not None and b is not None
    assert a.started < b.time and b.started < a.time, "a and b did not run at once"
    assert {states[r].devices for r in "abc"} == {"0"}  # type: ignore[union-attr]
    assert a.master != b.master
    c = states["c"]
    assert c is not None and c.attempt == 2 and c.history == ("FAILED",)
    assert (sweep / "runs/c/attempts/1/state.json").exists()
    assert not (sweep / "runs/d/logs").exists()  # never started


def test_a_failing_trial_fails_the_task_but_not_its_siblings(tmp_path: Path) -> None:
    (tmp_path / "trial.py").write_text(TRIAL)
    sweep = tmp_path / "sweep"
    for run_id, arg in {"bad": "flaky", "good": "ok"}.items():
        (sweep / "runs" / run_id).mkdir(parents=True)
        text = config(tmp_path, arg).replace("max_retries: 1", "max_retries: 0")
        (sweep / "runs" / run_id / "config.yaml").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PADDLE_"))}
    env["CUDA_VISIBLE_DEVICES"] = "0"

    with pytest.raises(PaddleHpcError, match=r"of 2 trial\(s\), 1 did not complete: bad$"):
        run_trials(sweep, [("bad", 1), ("good", 1)], sys.executable, env, cuda=False)
    bad = runstate.read(sweep / "runs/bad/state.json")
    good = runstate.read(sweep / "runs/good/state.json")
    assert bad is not None and bad.state == "FAILED" and not bad.retrying
    assert good is not None and good.state == "COMPLETED"
