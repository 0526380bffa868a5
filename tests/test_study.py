"""How many trials a search asks at a time, and the sampler it asks them of."""

from __future__ import annotations

import optuna
import pytest

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.schema import SearchConfig
from paddle_hpc.search.study import built, check, sampler_spec, to_ask


def test_trials_in_flight_are_topped_up_as_each_ends() -> None:
    config = SearchConfig(n_trials=24, parallel=4)
    assert [to_ask(config, running) for running in (0, 1, 3, 4, 5)] == [4, 3, 1, 0, 0]
    assert to_ask(SearchConfig(n_trials=24), 1) == 3  # four in flight by default


def test_a_batch_waits_for_its_last_trial() -> None:
    config = SearchConfig(n_trials=24, batch_size=4)
    assert [to_ask(config, running) for running in (0, 1, 3)] == [4, 0, 0]


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"parallel": 4, "batch_size": 2}, "give one"),
        ({"parallel": 0}, "search.parallel is 0"),
        ({"batch_size": -1}, "search.batch_size is -1"),
    ],
)
def test_how_many_at_once_is_refused_naming_the_key(given: dict[str, int], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        check(SearchConfig(n_trials=4, **given))


def test_tpe_lies_constantly_about_trials_in_flight_unless_told_not_to() -> None:
    tpe = "optuna.samplers.TPESampler"
    assert sampler_spec(SearchConfig(sampler={})) == {"_target_": tpe, "constant_liar": True}
    seeded = sampler_spec(SearchConfig(sampler={"_target_": tpe, "seed": 3}))
    assert seeded == {"_target_": tpe, "seed": 3, "constant_liar": True}
    told = {"_target_": tpe, "constant_liar": False}
    assert sampler_spec(SearchConfig(sampler=told)) == told
    random = {"_target_": "optuna.samplers.RandomSampler", "seed": 0}
    assert sampler_spec(SearchConfig(sampler=random)) == random
    sampler = built(sampler_spec(SearchConfig(sampler={})), "search.sampler", 0)
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._constant_liar
