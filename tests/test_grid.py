"""Grid expansion: Hydra's sweep grammar, order, run ids. Literal inputs, no I/O."""

from __future__ import annotations

from typing import Any

import pytest
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.plan.grid import expand, grid_axes, parse_override, render_value, run_id

GROUPS = {"model": ("resnet", "vit", "mlp")}


def keys_and_values(
    overrides: list[str], grid: dict[str, object] | None = None
) -> list[tuple[str, ...]]:
    return [p.overrides for p in expand(grid_axes(grid or {}, overrides, GROUPS))]


def test_cartesian_product_in_order_last_key_fastest() -> None:
    assert keys_and_values(["a=1,2", "b=x,y"]) == [
        ("a=1", "b=x"),
        ("a=1", "b=y"),
        ("a=2", "b=x"),
        ("a=2", "b=y"),
    ]


@pytest.mark.parametrize(
    ("grid", "overrides"),
    [
        ({}, ["a=1,2", "b=3,4", "a=5,6"]),
        ({}, ["a=1,2", "+c=x,y", "b=3", "a=7"]),
        ({"optim.lr": [0.1, 0.01], "bs": "range(1,3)", "seed": [0]}, ["seed=5,6", "optim.lr=0.5"]),
        ({"x": "1,2"}, ["y=3,4", "x=5,6,7", "y=8"]),
    ],
)
def test_the_order_of_points_is_hydras(grid: dict[str, Any], overrides: list[str]) -> None:
    """Hydra's BasicSweeper is the oracle: sweep.grid entries stand where
    hydra.sweeper.params would, before the command line."""
    params = [f"{k}={v if isinstance(v, str) else ','.join(map(str, v))}" for k, v in grid.items()]
    parsed = OverridesParser.create().parse_overrides([*params, *overrides])
    (batch,) = BasicSweeper.split_arguments(parsed, None)
    assert keys_and_values(overrides, grid) == [tuple(job) for job in batch]


def test_hydra_sweep_functions() -> None:
    assert keys_and_values(["x=range(0,6,2)"]) == [("x=0",), ("x=2",), ("x=4",)]
    assert keys_and_values(["x=choice(a,'b c')"]) == [("x=a",), ("x=b\\ c",)]  # Hydra's escape
    assert parse_override("x=b\\ c").value() == "b c"
    assert keys_and_values(["+new=1,2"]) == [("+new=1",), ("+new=2",)]
    assert keys_and_values(["model=glob(*)"]) == [("model=resnet",), ("model=vit",), ("model=mlp",)]
    assert keys_and_values(["model=glob(*,exclude=vit)"]) == [("model=resnet",), ("model=mlp",)]


def test_axes_know_config_groups() -> None:
    axes = grid_axes({}, ["model=resnet,vit", "a=1"], GROUPS)
    assert [(a.key, a.is_group) for a in axes] == [("model", True), ("a", False)]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("a=", None),
        ("a=[1,2", "bad override"),
        ("a=range(1", "bad override"),
        ("a b=1", "bad override"),
        ("a=interval(0,1)", "not a list of values"),
        ("a=glob(*)", "glob\\(\\) selects options of a config group"),
        ("model=glob(zzz*)", "matches none"),
    ],
)
def test_bad_sweeps_are_config_errors(override: str, message: str | None) -> None:
    if message is None:  # 'a=' is valid Hydra: the empty string
        assert keys_and_values([override]) == [("a=",)]
        return
    with pytest.raises(ConfigError, match=message):
        grid_axes({}, [override], GROUPS)


@pytest.mark.parametrize("spec", [[], {}, 3, None])
def test_bad_grid_entries(spec: object) -> None:
    with pytest.raises(ConfigError, match=r"sweep\.grid\.k"):
        grid_axes({"k": spec}, [], GROUPS)


def test_run_ids_are_stable_and_order_free() -> None:
    assert run_id(["a=1", "b=2"]) == run_id(["b=2", "a=1"])
    assert run_id(["a=1", "b=2"]) != run_id(["a=1", "b=3"])
    assert run_id(["a=1"]) == "r" + __import__("hashlib").sha1(b"a=1").hexdigest()[:10]
    first = [p.run_id for p in expand(grid_axes({}, ["a=1,2", "b=3"], GROUPS))]
    again = [p.run_id for p in expand(grid_axes({}, ["b=3", "a=1,2"], GROUPS))]
    assert first == again


def test_a_run_id_leaves_out_how_the_run_is_submitted() -> None:
    trained = ["optim.lr=0.1", "model=vit"]
    assert run_id(trained) == run_id(
        [
            *trained,
            "cluster.executor=auto",
            "resources.time=UNLIMITED",
            "resources.partition='gpu a100'",
            "+resources.sbatch.mail-type=END",
            "sweep.max_parallel=2",
            "collect.visualdl=[]",
            "search.n_trials=20",
        ]
    )
    for shaping in ("resources.nodes=2", "resources.gpus_per_node=4", "launch.env.X=1"):
        assert run_id([*trained, shaping]) != run_id(trained), shaping
    assert run_id([*trained, "search.trial=3"]) != run_id([*trained, "search.trial=4"])


def test_a_key_added_with_a_plus_on_the_command_line_replaces_the_grids() -> None:
    """The advice for a grid key the config lacks is `+key`: given on the command line,
    it takes the grid entry's place instead of adding a second axis of the same key."""
    axes = grid_axes({"foo": [1, 2], "b": [3]}, ["+foo=5,6,7"], GROUPS)
    assert [(a.key, a.choices, a.in_grid) for a in axes] == [
        ("foo", ("+foo=5", "+foo=6", "+foo=7"), False),
        ("b", ("b=3",), True),
    ]
    assert len(expand(axes)) == 3


def test_a_group_at_another_package_is_a_group() -> None:
    (axis,) = grid_axes({}, ["+model@aux=small,big"], {"model": ("small", "big")})
    assert axis.is_group and axis.choices == ("+model@aux=small", "+model@aux=big")


@pytest.mark.parametrize(
    "value",
    [
        1,
        -2.5,
        1e-4,
        True,
        None,
        "plain",
        "a b",
        "it's",
        'say "hi"',
        "$(touch x)",
        "back\\slash",
        "end\\",
        "q\\'q",
        "\\\\'",
        "comma,separated",
        "[not a list]",
        [1, "two", 3.0],
        {"k": "v w"},
    ],
)
def test_rendered_grid_values_parse_back_to_themselves(value: object) -> None:
    override = parse_override(f"key={render_value(value)}")
    assert override.value() == value
