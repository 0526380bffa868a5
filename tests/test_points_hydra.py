"""Every point's resolved config equals what Hydra itself composes for its overrides.

The oracle is Hydra's compose API, run afresh for each point with the point's
overrides, then paddle_hpc's schema and resolution; paddle_hpc composes once and
applies the points to one copy (points.py). Many grid shapes: interpolations as
swept values, chains, `+` and `~`, config groups, resolvers, lists and mappings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

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
