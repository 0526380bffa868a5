"""What a sweep ran with: the training code's git commit (and its diff when dirty), the
Python packages, Paddle's build and Slurm's version, in `SWEEP_DIR/environment.json`;
and, per node of each run, where it ran, in `logs/node<N>/environment.json`.

Secrets are not written: the node's record is the launcher's environment, from which
they were taken (core/secret_env.py), with any secret-looking name redacted besides.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import platform
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from paddle_hpc.core.files import write_json_atomic
from paddle_hpc.core.secret_env import REDACTED, is_secret

ENVIRONMENT = "environment.json"
DIFF = "git.diff"


def _run(argv: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            argv, cwd=cwd, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(folder: Path) -> tuple[dict[str, Any] | None, str]:
    """The repository holding `folder`: its root, commit and whether it is dirty; and
    the diff of the working tree against the commit ('' when clean or no repository)."""
    if shutil.which("git") is None:
        return None, ""
    root = _run(["git", "rev-parse", "--show-toplevel"], folder)
    commit = _run(["git", "rev-parse", "HEAD"], folder)
    if root is None or commit is None:
        return None, ""
    status = _run(["git", "status", "--porcelain"], folder) or ""
    diff = (_run(["git", "diff", "HEAD"], folder) or "") if status.strip() else ""
    info = {"root": root.strip(), "commit": commit.strip(), "dirty": bool(status.strip())}
    return info, diff


def packages() -> dict[str, str]:
    """Every installed distribution -> its version, as `pip freeze` would list them."""
    found = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[str(name)] = str(dist.version)
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def sweep_environment(code_dir: Path) -> tuple[dict[str, Any], str]:
    """What the submitting machine knows of the sweep's environment, and the git diff."""
    git, diff = git_state(code_dir)
    installed = packages()
    paddle = {
        name: installed[name] for name in ("paddlepaddle", "paddlepaddle-gpu") if name in installed
    }
    slurm = _run(["sbatch", "--version"], code_dir) if shutil.which("sbatch") else None
    return {
        "git": git,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "paddle": paddle,
        "paddle_cuda_build": "paddlepaddle-gpu" in paddle,
        "slurm": slurm.strip() if slurm else None,
        "packages": installed,
    }, diff


def write_sweep_environment(sweep_dir: Path, code_dir: Path) -> None:
    record, diff = sweep_environment(code_dir)
    write_json_atomic(sweep_dir / ENVIRONMENT, record)
    if diff:
        (sweep_dir / DIFF).write_text(diff, encoding="utf-8")


def node_environment(env: Mapping[str, str], mode: str, cuda: str | None) -> dict[str, Any]:
    """Where a node of a run ran: host, the GPUs it was given, the CUDA version Paddle
    was built with (None: the CPU build), and the launcher's environment (secret-looking
    values redacted)."""
    return {
        "host": socket.gethostname(),
        "mode": mode,
        "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES"),
        "paddle_cuda_version": cuda,
        "environment": {k: REDACTED if is_secret(k) else v for k, v in sorted(env.items())},
    }


_CUDA_VERSION = re.compile(r"^cuda_version\s*=\s*['\"]([^'\"]*)['\"]", re.MULTILINE)


def cuda_version_in(text: str) -> str | None:
    """The `cuda_version` of a paddle/version/__init__.py; LookupError when it has none."""
    found = _CUDA_VERSION.search(text)
    if found is None:
        raise LookupError("no cuda_version")
    return None if found.group(1) in ("False", "") else found.group(1)


@functools.cache
def paddle_cuda_version() -> str | None:
    """The CUDA version the installed Paddle was built with; None for the CPU build.
    Read from paddle/version/__init__.py, which Paddle's build writes: importing paddle
    would cost the node runner about 1.5 s before its launcher (which imports it
    again) could start."""
    spec = importlib.util.find_spec("paddle")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            text = (Path(folder) / "version" / "__init__.py").read_text(encoding="utf-8")
            return cuda_version_in(text)
        except (OSError, LookupError):
            continue
    try:
        import paddle  # a build that does not say: ask it
    except ImportError:  # no Paddle here (it may be in the container image)
        return None
    return "unknown" if paddle.device.is_compiled_with_cuda() else None


def paddle_version() -> str | None:
    """The installed Paddle's version (either build), without importing it."""
    for name in ("paddlepaddle-gpu", "paddlepaddle"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def write_node_environment(folder: Path, record: Mapping[str, Any]) -> None:
    write_json_atomic(folder / ENVIRONMENT, record)
