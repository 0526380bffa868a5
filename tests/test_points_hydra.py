"""Every point's resolved config equals what Hydra itself composes for its overrides.

The oracle is Hydra's compose API, run afresh for each point with the point's
overrides, then paddle_hpc's schema and resolution; paddle_hpc composes once and
applies the points to one copy (points.py). Many grid shapes: interpolations as
swept values, chains, `+` and `~`, config groups, resolvers, lists and mappings.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from paddle_hpc.core.schema import GROUPS
from paddle_hpc.plan.build import make_plan
from paddle_hpc.plan.config import register_schemas, validate
from paddle_hpc.plan.points import resolved

CONFIG = """\
defaults:
  - model: small
  - _self_
program:
  script: train.py
  args: [--lr, "${optim.lr}", --epochs, "${train.epochs}", --seed, "${train.seed}",
         --tag, "${model.name}-${train.seed}", --home, "${oc.env:PADDLE_HPC_ORACLE}"]
optim: {lr: 0.1, sched: {warmup: "${..lr}", steps: "${train.epochs}"}}
train: {epochs: 5, seed: 0}
alias: "${optim.sched.warmup}"
resources: {nodes: 1}
sweep: {name: oracle}
"""
SHAPES = [
    ["train.seed=1,2", "train.epochs=${train.seed}"],
    ["train.seed=1,2", "optim.lr=${train.seed}"],
    ["optim.lr=0.1,0.2", "train.epochs=3,4"],
    ["train.epochs=1,2", "optim.lr=${train.epochs},7"],
    ["model=small,big", "train.seed=3,4"],
    ["+extra=1,2", "train.seed=${extra}"],
    ["+b=1,2", "+c=x,'${optim.lr}'", "optim.lr=3,4"],
    ["++train.seed=1,2", "++fresh=a,b"],
    ["+model.depth.n=1,2", "model=small,big"],
    ["~alias", "optim.lr=1,2"],
    ["alias=x,${train.seed}", "train.seed=5,6"],
    ["optim.sched={warmup:1,steps:2},{warmup:3,steps:4}"],
    ["program.args=[a],[b,'${optim.lr}']", "optim.lr=8,9"],
    ["model.width=1,2", "model=small,big"],
]


def hydra_compose(conf: Path, overrides: list[str]) -> dict[str, Any]:
    register_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            return resolved(validate(compose(config_name="config", overrides=overrides)))
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PADDLE_HPC_ORACLE", "/home/it's $(x)")
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "config.yaml").write_text(CONFIG)
    (tmp_path / "conf" / "model" / "small.yaml").write_text("name: small\nwidth: 8\n")
    (tmp_path / "conf" / "model" / "big.yaml").write_text("name: big\nwidth: 64\n")
    (tmp_path / "train.py").write_text("")
    return tmp_path / "conf"


@pytest.mark.parametrize("overrides", SHAPES, ids=[" ".join(s) for s in SHAPES])
def test_each_point_is_what_hydra_composes(conf: Path, overrides: list[str]) -> None:
    plan = make_plan(conf, "config", overrides, conf.parent)
    assert len(plan.runs) > 1
    for run in plan.runs:
        expected = hydra_compose(conf, list(run.point.overrides))
        expected["program"]["script"] = str(conf.parent / "train.py")
        assert run.config == expected, run.point.overrides


# Hydra's own multirun (its BasicSweeper and BasicLauncher) as the oracle: an app that
# saves each job's overrides and resolved config, `${hydra:...}` values included.
APP = """\
import os, pickle, sys
import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def train(cfg):
    job = HydraConfig.get()
    seen = (list(job.overrides.task), OmegaConf.to_container(cfg, resolve=True))
    with open(os.path.join(os.environ["ORACLE_OUT"], f"{job.job.num}.pkl"), "wb") as f:
        pickle.dump(seen, f)

train()
"""
SWEEPER_CONFIG = """\
defaults:
  - model: small
  - _self_
program: {script: train.py}
optim: {lr: 0.1}
train: {seed: 0}
dotted: {"a.b": "${optim.lr}", c: {"d.e": ["${train.seed}"]}, "x.y": {z: "${model.name}"}}
lr_at: {10: "${optim.lr}", 20: 0.01}
seen:
  model: "${hydra:runtime.choices.model}"
  dirname: "${hydra:job.override_dirname}"
  num: "${hydra:job.num}"
  name: "${hydra:job.name}"
  tasks: "${hydra:overrides.task}"
sweep: {name: oracle}
"""
PARAMS = "hydra: {sweeper: {params: {optim.lr: '1,2', model: 'small,big'}}}\n"
SWEEPER_SHAPES = [
    ("", ["optim.lr=1,2", "train.seed=3,4"]),
    ("", ["+model@aux=small,big", "optim.lr=5"]),
    ("", ["model=small,big", "hydra.job.name=custom"]),
    ("", ["optim.lr=1,2", "hydra.job.config.override_dirname.exclude_keys=[optim.lr]"]),
    (PARAMS, ["train.seed=9"]),
    (PARAMS, ["optim.lr=3,4", "train.seed=7,8"]),
]


@pytest.mark.parametrize(
    ("extra", "overrides"), SWEEPER_SHAPES, ids=[" ".join(o) for _, o in SWEEPER_SHAPES]
)
def test_each_run_is_the_job_hydras_own_sweeper_runs(
    conf: Path, extra: str, overrides: list[str]
) -> None:
    (conf / "config.yaml").write_text(SWEEPER_CONFIG + extra)
    (conf.parent / "train.py").write_text(APP)
    out = conf.parent / "oracle"
    out.mkdir()
    subprocess.run(
        [sys.executable, "train.py", "-m", *overrides, f"hydra.sweep.dir={conf.parent}/multirun"],
        cwd=conf.parent,
        env={**os.environ, "ORACLE_OUT": str(out)},
        check=True,
        capture_output=True,
    )
    jobs = [pickle.loads((out / f"{n}.pkl").read_bytes()) for n in range(len(list(out.iterdir())))]
    plan = make_plan(conf, "config", overrides, conf.parent)
    assert len(plan.runs) == len(jobs) > 1
    for run, (tasks, config) in zip(plan.runs, jobs, strict=True):
        assert list(run.point.overrides) == tasks
        for key, value in config.items():
            if key not in GROUPS and key != "hydra":
                assert run.config[key] == value, (key, tasks)


def test_a_runs_hydra_output_dir_is_its_folder_and_the_grid_keeps_its_keys(conf: Path) -> None:
    (conf / "config.yaml").write_text(
        CONFIG.replace("sweep: {name: oracle}", "")
        + "out: ${hydra:runtime.output_dir}\nsweep:\n  name: o\n"
        + "  grid: {optim.lr: ['${train.epochs}', 2], 'train.seed': [1]}\n"
    )
    plan = make_plan(conf, "config", [], conf.parent)
    for run in plan.runs:
        assert run.config["out"] == str(conf.parent / "sweeps" / "o" / "runs" / run.run_id)
        assert run.config["sweep"]["grid"] == {"optim.lr": [5, 2], "train.seed": [1]}
    assert [r.config["optim"]["lr"] for r in plan.runs] == [5, 2]
