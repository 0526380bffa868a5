"""Adding points to a sweep: what counts as a changed config, and the merged manifest."""

from __future__ import annotations

import pytest

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.manifest import ArrayEntry, Manifest, RunEntry
from paddle_hpc.plan.extend import changed_keys, check_base, flatten, merge

BASE = {
    "optim": {"lr": 0.1, "sched": {"warmup": "${..lr}"}},
    "model": {"name": "small"},
    "program": {"args": ["--lr", "${optim.lr}"]},
    "sweep": {"name": "s", "grid": {"optim.lr": [1, 2]}},
    "empty": {},
}


def entry(run_id: str, *overrides: str, shape: int = 0) -> RunEntry:
    swept = {o.split("=")[0]: o.split("=")[1] for o in overrides}
    return RunEntry(run_id, 0, overrides, swept, shape)


def manifest(runs: tuple[RunEntry, ...], shapes: tuple[dict, ...], base: dict) -> Manifest:
    return Manifest("s", "t", (), "slurm", ("optim.lr",), shapes, runs, extra={"base": base})


def test_flatten_keeps_lists_and_empty_mappings_whole() -> None:
    assert flatten(BASE)["program.args"] == ["--lr", "${optim.lr}"]
    assert flatten(BASE)["empty"] == {} and flatten(BASE)["optim.sched.warmup"] == "${..lr}"


def test_changes_that_count_and_ones_that_do_not() -> None:
    edited = {**BASE, "model": {"name": "big"}, "sweep": {"name": "s", "grid": {}}}
    assert changed_keys(BASE, edited, ["optim.lr"]) == ["model.name"]
    assert changed_keys(BASE, edited, ["model"]) == []  # a group the overrides choose
    assert changed_keys(BASE, {**BASE, "new": 1}, ["+new"]) == []
    assert changed_keys(BASE, {**BASE, "new": 1}, []) == ["new"]


def test_a_changed_config_is_refused_unless_allowed() -> None:
    old = manifest((entry("r1", "optim.lr=1"),), ({"x": 1},), BASE)
    new = manifest((entry("r1", "optim.lr=1"),), ({"x": 1},), {**BASE, "model": {"name": "x"}})
    with pytest.raises(ConfigError, match=r"at model\.name: .*--allow-config-change"):
        check_base(old, new, allow_change=False)
    check_base(old, new, allow_change=True)


def test_merge_adds_only_new_points_with_their_shapes() -> None:
    old = manifest((entry("r1", "optim.lr=1"), entry("r2", "optim.lr=2")), ({"n": 1},), BASE)
    old = old.with_arrays((ArrayEntry(5, 0, ("r1", "r2")),), "submitted")
    new = manifest(
        (entry("r1", "optim.lr=1"), entry("r3", "optim.lr=3"), entry("r4", "optim.lr=4", shape=1)),
        ({"n": 1}, {"n": 2}),
        BASE,
    )
    merged, added = merge(old, new)
    assert added == ["r3", "r4"]
    assert [r.run_id for r in merged.runs] == ["r1", "r2", "r3", "r4"]
    assert [r.index for r in merged.runs][2:] == [2, 3]
    assert merged.shapes == ({"n": 1}, {"n": 2}) and merged.run("r4").shape == 1
    assert merged.run("r1").job_id == 5 and merged.run("r3").job_id is None
    assert merge(merged, new)[1] == []
    with pytest.raises(ConfigError, match=r"cluster\.executor=slurm"):
        merge(old, Manifest("s", "t", (), "local", (), (), ()))
