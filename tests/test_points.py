"""Grid points applied to one base config: the shortcuts give what Hydra's way gives."""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Sequence
from typing import Any

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException, ValidationError

from paddle_hpc.plan.config import validate
from paddle_hpc.plan.grid import parse_override
from paddle_hpc.plan.points import (
    PointResolver,
    dependencies,
    dotted,
    interpolations,
    references,
    resolved,
)

BASE = """
program:
  script: train.py
  args: [--lr, "${optim.lr}", "--out=${sweep.dir}/${.0}", --home, "${oc.env:PADDLE_HPC_T}"]
optim: {lr: 0.1, wd: 0.0, sched: {warmup: "${..lr}", steps: 10}}
model: {name: small, tag: "${model.name}-${optim.sched.warmup}", copy: "${optim}"}
alias: "${model.tag}"
resources: {nodes: 1, time: "10"}
sweep: {name: "it's $(x)"}
cluster: {executor: local}
"""


def base() -> DictConfig:
    return validate(OmegaConf.create(BASE))


def hydra_way(cfg: DictConfig, texts: Sequence[str]) -> dict[str, Any]:
    """The reference: a fresh copy of the base per point, resolved in full."""
    work = copy.deepcopy(cfg)
    ConfigLoaderImpl._apply_overrides_to_config([parse_override(t) for t in texts], work)
    return resolved(work)


@pytest.mark.parametrize(
    "axes",
    [
        [["optim.lr=0.1", "optim.lr=0.2"], ["optim.wd=0", "optim.wd=1e-4"]],
        [["model.name=a", "model.name='b c'"], ["optim.sched.steps=1", "optim.sched.steps=2"]],
        # a swept key that replaces an interpolation, and one that becomes one
        [["alias=x", "alias='${optim.wd}'"], ["optim.wd=1", "optim.wd=2"]],
        [["optim.sched.warmup=5", "optim.sched.warmup=6"], ["optim.lr=1", "optim.lr=2"]],
        [["resources.nodes=1", "resources.nodes=2"], ["cluster.executor=slurm"]],
        # Hydra merges these, so each point gets its own copy
        [["optim={lr:1}", "optim={wd:3}"], ["+extra=1", "+extra=2"]],
        [["program.args=[a]", "program.args=[b,'${optim.lr}']"]],
        [["~model.copy"], ["optim.lr=3", "optim.lr=4"]],
        # keys added once to a shared copy, nested ones too; ++ adds or changes
        [["+extra=1", "+extra='${optim.lr}'"], ["++optim.lr=3", "++optim.lr=4"]],
        [["+model.depth.n=1", "+model.depth.n=x"], ["optim.lr=1", "optim.lr=2"]],
        [["++new=1", "++new=2"], ["alias=a", "alias='${new}'"]],
    ],
)
def test_every_point_matches_a_fresh_copy(axes: list[list[str]]) -> None:
    os.environ["PADDLE_HPC_T"] = "/home/it's here"
    resolver = PointResolver(base())
    for texts in itertools.product(*axes):
        got = resolver.resolve([parse_override(t) for t in texts])
        assert got == hydra_way(base(), texts), texts


def test_other_resolvers_are_resolved_at_every_point() -> None:
    calls = iter(range(100))
    OmegaConf.register_new_resolver("paddle_hpc_test_next", lambda: next(calls), replace=True)
    cfg = validate(OmegaConf.create({"n": "${paddle_hpc_test_next:}", "home": "${oc.env:HOME}"}))
    resolver = PointResolver(cfg)
    got = [resolver.resolve([parse_override(f"+x={i}")]) for i in range(3)]
    assert [g["n"] for g in got] == [0, 1, 2]
    assert {g["home"] for g in got} == {os.environ["HOME"]}


def test_an_added_key_already_there_is_hydras_error() -> None:
    resolver = PointResolver(base())
    with pytest.raises(HydraException, match="Could not append to config"):
        resolver.resolve([parse_override("+optim.lr=1")])
    assert resolver.resolve([parse_override("++optim.lr=1")])["optim"]["lr"] == 1


def test_results_do_not_share_mutable_parts() -> None:
    os.environ["PADDLE_HPC_T"] = "x"
    resolver = PointResolver(base())
    first = resolver.resolve([parse_override("optim.wd=1")])
    first["model"]["copy"]["lr"] = "changed"
    first["program"]["args"].append("more")
    second = resolver.resolve([parse_override("optim.wd=1")])
    assert second == hydra_way(base(), ["optim.wd=1"])


def test_a_wrong_type_is_hydras_error_naming_the_override() -> None:
    resolver = PointResolver(base())
    resolver.resolve([parse_override("resources.nodes=2")])
    with pytest.raises(HydraException, match=r"resources\.nodes=many") as info:
        resolver.resolve([parse_override("resources.nodes=many")])
    assert isinstance(info.value.__cause__, ValidationError)


def test_an_unresolvable_reference_fails_at_its_point() -> None:
    cfg = validate(OmegaConf.create({"a": "${b}", "b": 1, "program": {"script": "x.py"}}))
    resolver = PointResolver(cfg)
    assert resolver.resolve([parse_override("b=2")])["a"] == 2
    with pytest.raises(OmegaConfBaseException):
        PointResolver(cfg).resolve([parse_override("a='${nowhere}'")])


def test_interpolations_are_found_in_lists_and_nested_mappings() -> None:
    found = interpolations(base())
    assert found["program", "args", 1] == "${optim.lr}"
    assert found["program", "args", 2] == "--out=${sweep.dir}/${.0}"
    assert found["optim", "sched", "warmup"] == "${..lr}"
    assert found["sweep", "dir"] == "sweeps/${sweep.name}"  # the schema's default
    assert ("optim", "lr") not in found and ("program", "args", 0) not in found


def test_a_path_under_a_key_with_a_dot_or_a_number_has_no_dotted_name() -> None:
    plain = {"a": {"b.c": 1, 10: [2], "d": [{"e": 3}]}}
    assert dotted(plain, ("a", "b.c")) is None
    assert dotted(plain, ("a", 10, 0)) is None
    assert dotted(plain, ("a", "d", 0, "e")) == "a.d.0.e"


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("a", "${optim.lr}", {"optim.lr"}),
        ("a", "x ${b-c}/${d.e_f}!", {"b-c", "d.e_f"}),
        ("x.y.n", "${.b}", {"x.y.b"}),
        ("x.y.n", "${..b}", {"x.b"}),
        ("l.1", "${.0}", {"l.0"}),
        ("a", "no reference", set()),
        ("a", "${oc.env:HOME}", set()),
        ("a", "${oc.env:HOME,/tmp}/${b}", {"b"}),
        ("a", "${now:%Y-%m-%d_%H-%M}", set()),
        ("a", "${oc.env:${b}}", None),
        ("a", "${run:dir}/out", None),
        ("a", "${my_resolver:1}", None),
        ("a", "${${k}}", None),
        ("a", "\\${a}", None),
        ("a", "${a", None),
        ("a", "${...b}", None),
    ],
)
def test_references(path: str, text: str, expected: set[str] | None) -> None:
    got = references(path, text)
    assert got == (None if expected is None else frozenset(expected))


def test_dependencies_follow_chains_and_containers() -> None:
    texts = {
        "p": "${q}",
        "q": "--lr=${optim.lr}",
        "whole": "${optim}",
        "inside": "${opt.x}",
        "opt": "${optim}",
        "env": "${oc.env:X}",
        "custom": "${my_resolver:${optim.lr}}",
        "uses_custom": "${custom}",
        "uses_env": "${env}",
        "c1": "${c2}",
        "c2": "${c1}",
        "alias": "${optim.lr}",
        "fixed": "${name}",
    }
    deps = dependencies(texts, ["optim.lr", "alias"])
    assert deps["p"] == deps["q"] == deps["whole"] == frozenset({"optim.lr"})
    assert deps["inside"] == frozenset({"optim.lr"})
    assert deps["fixed"] == frozenset()
    assert deps["env"] == deps["uses_env"] == frozenset()
    assert deps["custom"] is None and deps["uses_custom"] is None
    assert deps["c1"] is None and deps["c2"] is None
    assert deps["alias"] is None  # swept itself


def test_interpolations_under_keys_a_dotted_key_cannot_name_resolve_at_each_point() -> None:
    """{'a.b': ..} and {a: {b: ..}} share the dotted name x.a.b; both have their value."""
    cfg = validate(
        OmegaConf.create(
            {
                "v": 1,
                "w": 2,
                "x": {"a.b": "${v}", "a": {"b": "${w}"}, 10: "${v}"},
                "y": "${x}",
                "program": {"script": "x.py"},
            }
        )
    )
    resolver = PointResolver(cfg)
    for v, w in ((1, 2), (3, 4), (3, 5)):
        got = resolver.resolve([parse_override(f"v={v}"), parse_override(f"w={w}")])
        assert got["x"] == {"a.b": v, "a": {"b": w}, 10: v}
        assert got["y"] == got["x"]
