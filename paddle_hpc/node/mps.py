"""CUDA MPS for a packed task (resources.mps): one control daemon per task, so that the
trials sharing a GPU share one context instead of time-slicing it.

The daemon's pipes and logs go to the task's own temporary folder (NVIDIA's default,
/tmp/nvidia-mps, would be shared with every other job on the node); the trials get
the same CUDA_MPS_PIPE_DIRECTORY, and the daemon is told to quit when the task ends.
Only where the Paddle build has CUDA: elsewhere `daemon` does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
CONTROL = "nvidia-cuda-mps-control"


@dataclass(frozen=True)
class MpsCommands:
    env: dict[str, str]  # for the daemon and for every trial
    start: tuple[str, ...]
    stop: tuple[str, ...]
    stop_input: str  # what `stop` reads on its standard input


def commands(folder: Path) -> MpsCommands:
    """The commands that start and stop a control daemon whose files live in `folder`."""
    return MpsCommands(
        env={
            "CUDA_MPS_PIPE_DIRECTORY": str(folder / "mps-pipe"),
            "CUDA_MPS_LOG_DIRECTORY": str(folder / "mps-log"),
        },
        start=(CONTROL, "-d"),
        stop=(CONTROL,),
        stop_input="quit\n",
    )


@contextlib.contextmanager
def daemon(enabled: bool, env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Runs an MPS control daemon while the block runs; yields the variables the
    trials need (none when not enabled)."""
    if not enabled:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="paddle-hpc-mps-") as folder:
        mps = commands(Path(folder))
        for path in mps.env.values():
            Path(path).mkdir()
        full = {**env, **mps.env}
        try:
            subprocess.run(list(mps.start), env=full, check=True, capture_output=True)  # noqa: S603
        except (OSError, subprocess.CalledProcessError) as exc:
            log.warning("CUDA MPS not started (%s): the trials share the GPUs without it", exc)
            yield {}
            return
        log.info("CUDA MPS control daemon started; pipes in %s", mps.env["CUDA_MPS_PIPE_DIRECTORY"])
        try:
            yield dict(mps.env)
        finally:
            stopped = subprocess.run(  # noqa: S603
                list(mps.stop), input=mps.stop_input, env=full, text=True, capture_output=True
            )
            if stopped.returncode != 0:
                log.warning("CUDA MPS control daemon: quit answered %s", stopped.stderr.strip())
