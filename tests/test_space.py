"""A search's space: Hydra's Optuna sweeper is the oracle of what each override means."""

from __future__ import annotations

import warnings

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.plan.grid import parse_override
from paddle_hpc.search import space

with warnings.catch_warnings():  # its old distribution classes are deprecated in Optuna
    warnings.simplefilter("ignore")
    from hydra_plugins.hydra_optuna_sweeper._impl import (
        create_optuna_distribution_from_override as optuna_sweepers,
    )

SWEEPS = [
    "x=choice(a, 1, 2.5, true)",
    "x=a,b,c",
    "x=choice('a,b', \"q's\", 'with space')",
    "x=range(1,5)",
    "x=range(2,12,2)",
    "x=range(0.1,0.5,0.1)",
    "x=range(1,5.0)",
    "x=interval(1,5)",
    "x=interval(0.5, 0.75)",
    "x=tag(log, interval(1e-4, 1e-1))",
    "+added.key=interval(-1, 1)",
    "model.depth=choice(2,4,8)",
]


@pytest.mark.parametrize("text", SWEEPS)
def test_each_sweep_means_what_hydras_optuna_sweeper_makes_of_it(text: str) -> None:
    override = parse_override(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = optuna_sweepers(override)
    ours = space.distribution(override)
    # the sweeper makes Optuna's deprecated classes: the same fields, another name
    assert vars(ours) == vars(theirs)
    assert isinstance(ours, CategoricalDistribution | FloatDistribution | IntDistribution)


def test_shuffle_is_a_choice_of_the_range() -> None:
    dist = space.distribution(parse_override("x=shuffle(range(1,4))"))
    assert isinstance(dist, CategoricalDistribution)
    assert sorted(dist.choices) == [1, 2, 3]  # type: ignore[type-var]


def test_split_keeps_fixed_overrides_and_the_last_value_of_a_key() -> None:
    found, fixed = space.split(
        ["optim.lr=0.1", "model=vit", "optim.lr=interval(0.01, 0.1)", "seed=1,2", "seed=7"]
    )
    assert list(found) == ["optim.lr"]
    assert vars(found["optim.lr"]) == vars(FloatDistribution(0.01, 0.1))
    assert fixed == ["model=vit", "seed=7"]


def test_grid_lists_become_choices_and_their_values_keep_their_types() -> None:
    texts = space.grid_texts(
        {"optim.lr": [0.003, 0.03], "name": ["a b", "it's"], "flag": [True], "n": "range(1,4)"}
    )
    assert texts == [
        "optim.lr=choice(0.003,0.03)",
        "name=choice('a b','it\\'s')",
        "flag=true",
        "n=range(1,4)",
    ]
    found, fixed = space.split(texts)
    assert found["name"].choices == ("a b", "it's")  # type: ignore[attr-defined]
    assert fixed == ["flag=true"]


@pytest.mark.parametrize(
    "value", [0.1, 1e-300, -3, True, None, "plain", "a b", "it's", "$(rm -rf /)", "x=y,z"]
)
def test_a_sampled_value_is_an_override_hydra_reads_back_the_same(value: object) -> None:
    assert parse_override(space.override("k", value)).value() == value


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("x=interval(1, 0)", "x=interval(1, 0)"),
        ("x=tag(log, interval(0, 1))", "log"),
        ("x=choice([1,2],[3])", "string, number or bool"),
        ("x=choice({a: 1}, {a: 2})", "string, number or bool"),
        ("x=glob(*)", "a search takes choice()"),
    ],
)
def test_a_space_optuna_cannot_sample_is_refused_naming_the_override(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        space.split([text])
    assert says in str(caught.value)


def test_probes_are_the_corners_of_the_space() -> None:
    found, _ = space.split(["a=interval(0.5, 2)", "b=choice(x, y, z)", "c=range(3, 9)"])
    assert space.probes(found) == [{"a": 0.5, "b": "x", "c": 3}, {"a": 2.0, "b": "z", "c": 9}]


def test_a_batch_of_trials_is_one_point_per_trial_not_a_product() -> None:
    from paddle_hpc.plan.grid import Axis, searched

    fixed = [Axis("steps", ("steps=3",), False)]
    axes, points = searched(
        fixed, [(5, ["x=0.1", "search.trial=5"]), (6, ["x=0.1", "search.trial=6"])]
    )
    assert [a.key for a in axes] == ["steps", "x", "search.trial"]
    assert [p.index for p in points] == [5, 6]
    assert points[0].overrides == ("steps=3", "x=0.1", "search.trial=5")
    assert points[0].run_id != points[1].run_id  # the same values, another trial
    # a batch of one still says what was searched
    axes, (point,) = searched(fixed, [(7, ["x=0.5", "search.trial=7"])])
    assert point.swept(axes) == {"x": "0.5", "search.trial": "7"}
    with pytest.raises(ConfigError, match="trial 9 sets no value for x"):
        searched(fixed, [(8, ["x=1", "search.trial=8"]), (9, ["search.trial=9"])])


@pytest.mark.parametrize(
    ("state", "ended", "objective", "expected"),
    [
        ("COMPLETED", True, 0.5, "COMPLETE"),
        ("COMPLETED", True, None, "FAIL"),  # it logged no objective
        ("COMPLETED", True, float("nan"), "FAIL"),  # as Optuna takes a NaN
        ("PRUNED", True, 2.0, "PRUNED"),
        ("FAILED", True, 0.5, "FAIL"),
        ("TIMEOUT", True, None, "FAIL"),
        ("RUNNING", False, 0.5, "RUNNING"),
        ("PENDING", False, None, "RUNNING"),
    ],
)
def test_a_trials_state_in_the_study_follows_its_run(
    state: str, ended: bool, objective: float | None, expected: str
) -> None:
    from paddle_hpc.core.runstate import study_state

    assert study_state(state, ended, objective) == expected
