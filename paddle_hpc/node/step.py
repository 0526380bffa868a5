"""What a step of sweep.then runs on its node once its run has completed.

Slurm starts a step's array task after the training array's task of the same run ended
COMPLETED (`--dependency=aftercorr`); when that task fails or is cancelled, Slurm
cancels the step's (`--kill-on-invalid-dep=yes`). The step runs its program once, as a
plain process (not through Paddle's launcher), in the run's folder or its own `cwd`,
with `PADDLE_HPC_RUN_DIR` set to `runs/<id>/then/<step>/`, so that `log_metrics` writes
the step's metrics there; its output goes to `then/<step>/log` and its state to
`then/<step>/state.json`. A SIGTERM or SIGINT (scancel, the time limit) is passed on to
the program's process group.

Node side: imports neither pandas nor Hydra.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from paddle_hpc.core import runstate
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.layout import STATE, STEP_LOG, RunDir, SweepDir
from paddle_hpc.core.runstate import RunState
from paddle_hpc.core.schema import StepConfig
from paddle_hpc.node.attempts import slurm_job
from paddle_hpc.node.runner import load_run_config
from paddle_hpc.node.signals import SIGNALS


def step_command(spec: StepConfig, python: str) -> list[str]:
    """The step's argv: its script (made absolute when the sweep was planned) or module,
    and its arguments, resolved for its run."""
    target = [spec.script] if spec.script is not None else ["-m", str(spec.module)]
    return [python, *target, *(str(a) for a in spec.args)]


def run_step(run: RunDir, name: str, spec: StepConfig, python: str, env: Mapping[str, str]) -> int:
    """Runs the step for the run; raises PaddleHpcError if it fails."""
    folder = run.then(name)
    folder.mkdir(parents=True, exist_ok=True)
    job = slurm_job(env)
    runstate.write(folder / STATE, RunState(runstate.RUNNING, runstate.now(), job=job))
    stopped: list[int] = []
    with (folder / STEP_LOG).open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - the user's program, an argv list
            step_command(spec, python),
            cwd=spec.cwd or run.path,
            env={**env, **spec.env, "PADDLE_HPC_RUN_DIR": str(folder)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def stop(signum: int) -> None:
            if signum != signal.SIGUSR2:  # Slurm's warning: the step has no checkpoint
                stopped.append(signum)
                os.killpg(process.pid, signum)

        SIGNALS.add(stop)
        try:
            code = process.wait()
        finally:
            SIGNALS.remove(stop)
    state = runstate.COMPLETED if code == 0 else runstate.FAILED
    reason = None
    if code != 0:
        reason = (
            f"stopped by signal {signal.Signals(stopped[0]).name}"
            if stopped
            else f"exited with code {code}"
        )
    ended = RunState(state, runstate.now(), job=job, returncode=code, reason=reason)
    runstate.write(folder / STATE, ended)
    if code != 0:
        raise PaddleHpcError(f"run {run.path.name}: step {name} {reason}; see {folder / STEP_LOG}")
    return 0


@dataclass(frozen=True)
class StepTask:
    """The callable submitit pickles for each task of a step's array."""

    sweep_dir: str
    run_id: str
    step: str
    python: str

    def __call__(self) -> int:
        SIGNALS.install()  # first: Slurm's stop signal may come while the task starts
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        run = SweepDir(Path(self.sweep_dir)).run(self.run_id)
        spec = load_run_config(run).sweep.then.get(self.step)
        if spec is None:
            raise PaddleHpcError(f"run {self.run_id}: its config has no sweep.then.{self.step}")
        return run_step(run, self.step, spec, self.python, dict(os.environ))
