"""The private parts of Hydra, submitit and Optuna that paddle_hpc relies on, where no
public API does the job, all here. pyproject.toml pins the releases they were checked
with; tests/test_compat.py checks each against the installed release and names it when
one changed.

Hydra and Optuna are imported when first needed; the node side imports neither this
module nor them.
"""

from __future__ import annotations

import pickle
import shlex
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import submitit
from submitit.core import utils
from submitit.slurm.slurm import _make_sbatch_string

if TYPE_CHECKING:
    import optuna
    from hydra.core.override_parser.types import Override
    from omegaconf import DictConfig

NO_LIMIT_MIN = 10**9  # submitit's timeout of a task without a time limit


def apply_overrides(overrides: Sequence[Override], cfg: DictConfig) -> None:
    """Applies parsed command-line overrides to `cfg` in place, with Hydra's own checks
    and messages, as composing with them would (a compose costs about 0.1 s a point)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    ConfigLoaderImpl._apply_overrides_to_config(list(overrides), cfg)


def overrides_dirname(overrides: Sequence[Override], hydra: DictConfig) -> str:
    """`hydra.job.override_dirname` of a job with these overrides, as Hydra makes it."""
    from hydra._internal.config_loader_impl import get_overrides_dirname

    settings = hydra.job.config.override_dirname
    return get_overrides_dirname(
        overrides=list(overrides),
        exclude_keys=list(settings.exclude_keys),
        item_sep=settings.item_sep,
        kv_sep=settings.kv_sep,
    )


def set_hydra_config(cfg: DictConfig | None) -> DictConfig | None:
    """Makes `cfg` ({"hydra": ...}) what `${hydra:...}` reads, without the copy that
    HydraConfig.set_config makes at each call; returns what it replaced."""
    from hydra.core.hydra_config import HydraConfig

    instance = HydraConfig.instance()
    previous: DictConfig | None = instance.cfg  # type: ignore[assignment]
    instance.cfg = cfg  # type: ignore[assignment]
    return previous


def sbatch_string(command: str, folder: Path, parameters: dict[str, Any]) -> str:
    """The sbatch script submitit writes for these parameters, each #SBATCH value quoted."""
    text: str = _make_sbatch_string(command=command, folder=folder, **parameters)
    return text


def running_trial(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> optuna.trial.Trial:
    """A running trial of a study taken up from storage, to report to and tell."""
    import optuna

    return optuna.trial.Trial(study, frozen._trial_id)


def unpack_command(python: str, folder: Path) -> str:
    """The command of an array task: it unpacks its pickle, then runs as submitit's."""
    return " ".join([python, "-u -m paddle_hpc.node.unpack", shlex.quote(str(folder))])


class SeamExecutor(submitit.SlurmExecutor):
    """submitit's SlurmExecutor whose sbatch call is `submit(script) -> job id`, and
    which submits an array, one task per callable, the way submitit's own map_array
    does (its pickles, script and file layout) without the executor that runs sbatch
    itself. Overrides submitit's `_submit_command`."""

    def __init__(self, folder: Path, python: str, submit: Callable[[Path], int]) -> None:
        super().__init__(folder, python=python)
        self._submit = submit

    def _submit_command(self, command: str) -> submitit.Job[Any]:
        tmp = uuid.uuid4().hex
        folder = utils.JobPaths.get_first_id_independent_folder(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f".submission_file_{tmp}.sh"
        path.write_text(self._make_submission_file_text(command, tmp), encoding="utf-8")
        try:
            job_id = self._submit(path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        job = self.job_class(
            folder=self.folder, job_id=str(job_id), tasks=list(range(self._num_tasks()))
        )
        job.paths.move_temporary_file(path, "submission_file", keep_as_symlink=True)
        return job

    def submit_array_job(self, tasks: Sequence[Callable[[], Any]]) -> int:
        """Submits one array with a task per callable; returns the array's job id. The
        tasks' pickles, as submitit writes each, go in one file, `<job>_tasks.pkl`,
        which each task unpacks on its node (`paddle_hpc.node.unpack`, the command)."""
        folder = utils.JobPaths.get_first_id_independent_folder(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        timeout_min = self.parameters.get("time", 5)
        if not isinstance(timeout_min, int):  # 'UNLIMITED': a USR2 is never the time limit
            timeout_min = NO_LIMIT_MIN
        blobs = []
        for task in tasks:
            delayed = utils.DelayedSubmission(task)
            delayed.set_timeout(timeout_min, self.max_num_timeout)
            blobs.append(pickle.dumps(delayed))  # its callable is importable: no cloudpickle
        bundle = folder / f".tasks_{uuid.uuid4().hex}.pkl"
        bundle.write_bytes(pickle.dumps(blobs))
        self.parameters["map_count"] = len(tasks)
        try:
            first = self._submit_command(self.unpack_command)
        except BaseException:
            bundle.unlink(missing_ok=True)
            raise
        bundle.rename(folder / f"{first.job_id}_tasks.pkl")
        return int(first.job_id)

    @property
    def unpack_command(self) -> str:
        return unpack_command(self.python, self.folder)
