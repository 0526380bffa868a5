"""A search without Slurm, and a bad search refused before anything is written."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from paddle_hpc.backend.submission import write
from paddle_hpc.collect import load as load_tables
from paddle_hpc.core.files import write_json_atomic
from paddle_hpc.core.manifest import load
from paddle_hpc.plan.build import build_manifest
from paddle_hpc.search import driver, study
from tests.test_search_cluster import CONFIG, CURVE, study_of
from tests.test_sweep_cluster import run_module, sweep, write_conf


def project(tmp_path: Path, config: str = CONFIG) -> Path:
    write_conf(tmp_path, config)
    (tmp_path / "curve.py").write_text(CURVE)
    return tmp_path / "sweeps" / "searched"


def test_without_slurm_a_search_runs_its_trials_here_and_tells_the_study(tmp_path: Path) -> None:
    sweep_dir = project(tmp_path)
    done = sweep(
        tmp_path,
        "--wait",
        "cluster.executor=local",
        "search.n_trials=3",
        "search.parallel=2",
        "search.poll=0.5",
        "steps=2",
        "search.pruner={}",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "search done: 3 trials" in done.stdout
    study = study_of(sweep_dir)
    runs = load_tables(sweep_dir).runs.set_index("search.trial")
    # the driver's log says why a trial was not COMPLETE
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3, done.stdout + done.stderr
    for trial in study.trials:
        assert runs.loc[trial.number, "final.loss"] == trial.value
        assert runs.loc[trial.number, "x"] == trial.params["x"]
    assert list(runs["trial_state"]) == ["COMPLETE"] * 3
    status = run_module("paddle_hpc.status", str(sweep_dir))
    assert "COMPLETED 3" in status.stdout


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["search.params.x=0.5"], "nothing is searched"),
        (["search.objective=loss"], "search.objective is 'loss'"),
        (["search.parallel=0"], "search.parallel is 0"),
        (["search.batch_size=2"], "search.parallel is 4 and search.batch_size is 2: give one"),
        (["search.sampler={_target_: optuna.samplers.NoSuchSampler}"], "search.sampler"),
        (["search.pruner={_target_: optuna.pruners.MedianPruner, warmup: 2}"], "search.pruner"),
        (["search.direction=up"], "search.direction"),
        (["search.params.x='interval(1, 0)'"], "interval(1, 0)"),
        (["search.params.x='choice([1], [2])'"], "string, number or bool"),
        # the corners of the space are planned in full: a type the config cannot take
        (["search.params={resources.nodes: 'interval(1, 2)'}"], "resources.nodes"),
    ],
)
def test_a_bad_search_is_refused_naming_the_key_and_writes_nothing(
    tmp_path: Path, overrides: list[str], says: str
) -> None:
    sweep_dir = project(tmp_path)
    result = sweep(tmp_path, "cluster.executor=local", *overrides)
    assert result.returncode == 1, result.stdout + result.stderr
    assert says in result.stdout + result.stderr
    assert not sweep_dir.exists()


def test_a_trial_its_killed_driver_planned_but_never_submitted_is_run_by_the_next(
    tmp_path: Path,
) -> None:
    """The first driver asked trial 0 and wrote its run into the sweep, then was killed
    before it submitted it: the next driver submits it, and the study has it once."""
    sweep_dir = project(tmp_path)
    overrides = ["cluster.executor=local", "search.n_trials=1", "steps=2", "search.pruner={}"]
    request = driver.Request(str(tmp_path / "conf"), "config", overrides, str(tmp_path), [])
    found = driver.search_space(Path(request.config_dir), request.config_name, overrides)
    (sweep_dir / "search").mkdir(parents=True)
    write_json_atomic(sweep_dir / "search" / driver.REQUEST, asdict(request))
    trial = study.open_study(sweep_dir / "search", found.config).ask(dict(found.space))
    plan = driver.plan_trials(request, found, [(0, trial.params)])
    trial.set_user_attr("run_id", plan.runs[0].run_id)
    write(plan, build_manifest(plan, []), False, print)
    assert load(sweep_dir).runs[0].job_id is None  # planned, not submitted

    again = run_module("paddle_hpc.search", str(sweep_dir))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "trial 0: running here" in again.stdout and "search done: 1 trials" in again.stdout
    (done,) = study_of(sweep_dir).trials
    assert done.state.name == "COMPLETE" and done.params == trial.params
    assert load_tables(sweep_dir).runs["final.loss"].tolist() == [done.value]
