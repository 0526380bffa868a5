"""Each private API paddle_hpc uses (paddle_hpc/core/compat.py), against the release
installed: a new release that changes one fails here, with the name of what changed,
rather than somewhere in a sweep."""

from __future__ import annotations

import atexit
import functools
import importlib.metadata
import itertools
import os
import pickle
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import tomllib
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from packaging.requirements import Requirement

from paddle_hpc.core import compat
from paddle_hpc.node.unpack import unpack
from paddle_hpc.plan.grid import parse_override
from paddle_hpc.slurm.executor import node_python

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("package", ["hydra-core", "omegaconf", "submitit", "optuna"])
def test_the_installed_release_is_one_the_pins_allow(package: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = [
        *project["dependencies"],
        *itertools.chain(*project["optional-dependencies"].values()),
    ]
    pins = [req for req in map(Requirement, listed) if req.name == package]
    assert pins and all(pin.specifier for pin in pins), f"pyproject.toml pins no {package}"
    installed = importlib.metadata.version(package)
    for pin in pins:
        assert pin.specifier.contains(installed), (
            f"{package} {installed} is outside {pin.specifier}: check core/compat.py against it"
        )


def test_hydras_overrides_apply_in_place_with_its_checks() -> None:
    cfg = OmegaConf.create({"optim": {"lr": 0.1}, "tags": ["a"]})
    OmegaConf.set_struct(cfg, True)
    overrides = [parse_override(o) for o in ["optim.lr=0.5", "+model.width=8", "~tags"]]
    compat.apply_overrides(overrides, cfg)
    assert OmegaConf.to_container(cfg) == {"optim": {"lr": 0.5}, "model": {"width": 8}}
    with pytest.raises(ConfigCompositionException, match=r"Could not override 'optim\.momentum'"):
        compat.apply_overrides([parse_override("optim.momentum=0.9")], cfg)


def test_submitits_sbatch_script_quotes_each_value(tmp_path: Path) -> None:
    script = compat.sbatch_string(
        "python -m submitit.core._submit /x",
        tmp_path,
        {"job_name": "a b", "array_parallelism": 2, "map_count": 4, "comment": "$(id)"},
    )
    assert "#SBATCH --array=0-3%2" in script
    assert "#SBATCH --job-name='a b'" in script
    assert "#SBATCH --comment='$(id)'" in script
    assert script.rstrip().endswith("python -m submitit.core._submit /x")


def test_submitits_array_layout_with_our_own_sbatch_call(tmp_path: Path) -> None:
    scripts: list[str] = []

    def submit(script: Path) -> int:
        scripts.append(script.read_text())
        return 4321

    folder = tmp_path / "slurm $(x)"
    executor = compat.SeamExecutor(folder, "/usr/bin/python3", submit)
    executor.update_parameters(time="UNLIMITED", array_parallelism=2)
    assert executor.submit_array_job([len, abs, str]) == 4321
    assert "#SBATCH --array=0-2%2" in scripts[0]
    assert "-u -m paddle_hpc.node.unpack" in scripts[0]
    # one file of pickles for the array; each task writes its own on its node
    assert sorted(p.name for p in folder.glob("*.pkl")) == ["4321_tasks.pkl"]
    for task, function in enumerate((len, abs, str)):
        pickled = unpack(folder, "4321", task)
        assert pickled == folder / f"4321_{task}_submitted.pkl"
        with pickled.open("rb") as handle:
            assert pickle.load(handle).function is function
    pickled.write_bytes(b"kept")  # a requeued task's pickle is its own: not unpacked again
    assert unpack(folder, "4321", 2).read_bytes() == b"kept"
    assert (folder / "4321_submission.sh").exists()

    def refused(script: Path) -> int:
        raise RuntimeError("sbatch: error: invalid partition")

    failing = compat.SeamExecutor(tmp_path / "other", "/usr/bin/python3", refused)
    with pytest.raises(RuntimeError, match="invalid partition"):
        failing.submit_array_job([len])
    assert list((tmp_path / "other").rglob("*.pkl")) == []  # nothing half-submitted


def run_task(folder: Path) -> subprocess.CompletedProcess[str]:
    """Task 0 of array 4321 in `folder`, by the command its sbatch script runs."""
    slurm = {"SLURM_ARRAY_JOB_ID": "4321", "SLURM_ARRAY_TASK_ID": "0", "SLURM_JOB_ID": "4322"}
    slurm |= {"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_JOB_NODELIST": "localhost"}
    command = [*shlex.split(node_python(sys.executable)), "-m", "paddle_hpc.node.unpack"]
    return subprocess.run(
        [*command, str(folder)],
        env={**os.environ, **slurm, "SUBMITIT_EXECUTOR": "slurm"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_stop_signal_before_the_runners_handlers_leaves_the_task_running(
    tmp_path: Path,
) -> None:
    """Slurm's USR2 can reach a task before the node runner installs its handlers: the
    task's command starts with it ignored, and submitit's own handler (which would take
    it for the time-out of a job it cannot checkpoint) is left out."""
    folder = tmp_path / "slurm"
    executor = compat.SeamExecutor(folder, sys.executable, lambda script: 4321)
    executor.update_parameters(time=1)
    executor.submit_array_job([functools.partial(signal.raise_signal, signal.SIGUSR2)])
    done = run_task(folder)
    assert done.returncode == 0, done.stderr
    with (folder / "4321_0_0_result.pkl").open("rb") as handle:
        assert pickle.load(handle) == ("success", None)


def handles_usr2_then_reports(path: str) -> None:
    """A task that handles USR2, as the node runner does, and says at its process's
    exit whether USR2 is ignored then (after which Python's exit leaves it so)."""
    signal.signal(signal.SIGUSR2, lambda signum, frame: None)

    def report() -> None:
        status = Path("/proc/self/status").read_text()
        found = re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, re.MULTILINE)
        assert found is not None
        Path(path).write_text(str(bool(int(found[1], 16) >> (signal.SIGUSR2 - 1) & 1)))

    atexit.register(report)


def test_a_stop_signal_as_the_task_exits_is_ignored(tmp_path: Path) -> None:
    """Python's exit gives a handled signal its default action back, and USR2's ends a
    process: Slurm's stop signal as a task that completed exits would end it by the
    signal, and srun its step. The task ignores USR2 once its work is done."""
    folder = tmp_path / "slurm"
    executor = compat.SeamExecutor(folder, sys.executable, lambda script: 4321)
    said = tmp_path / "ignored"
    executor.submit_array_job([functools.partial(handles_usr2_then_reports, str(said))])
    done = run_task(folder)
    assert done.returncode == 0, done.stderr
    assert said.read_text() == "True"


def test_optunas_running_trial_can_be_taken_up() -> None:
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    asked = study.ask()
    asked.report(0.5, 1)
    (frozen,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    trial = compat.running_trial(study, frozen)
    trial.report(0.25, 2)
    study.tell(trial, 0.1)
    (done,) = study.get_trials()
    assert done.intermediate_values == {1: 0.5, 2: 0.25} and done.value == 0.1
