"""A node entering its container image (cluster.container): the image checked against
the one submitted, the runtime picked, the copy of paddle_hpc made, and the image's
Python asked what Paddle it has, before the launcher starts inside (node/runner.py)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.layout import RunDir
from paddle_hpc.core.schema import RunConfig
from paddle_hpc.node import container, image_digest
from paddle_hpc.node.container import Guest, ImageError
from paddle_hpc.node.image_digest import ImageId

PROBE = """\
import json, sys
try:
    from paddle_hpc.node.capture import paddle_cuda_version, paddle_version
    found = {"python": sys.executable, "paddle": paddle_version(), "cuda": paddle_cuda_version()}
except ImportError as exc:
    found = {"python": sys.executable, "error": str(exc)}
print(json.dumps(found))
"""


def enter_image(
    config: RunConfig,
    run: RunDir,
    env: Mapping[str, str],
    private: Path,
    attempt: int,
    submitted: ImageId | None,
) -> tuple[Guest, dict[str, Any]]:
    """How this node runs its launcher in cluster.container's image, after checking that
    the image is the one `submitted`; and what the image holds: its Python, its Paddle
    and the CUDA version that Paddle was built with (None: the CPU build)."""
    spec = config.cluster.container
    assert spec.image is not None
    host = socket.gethostname()
    try:
        kind = container.image_kind(spec.image)
    except PaddleHpcError as exc:
        raise ImageError(f"on {host}: {exc}") from exc
    runtime = container.pick_runtime(spec.runtime.value, kind, shutil.which)
    if submitted is not None:
        image_digest.verify(submitted, host)
    workdir = Path(config.program.cwd) if config.program.cwd else Path.cwd()
    node = int(env.get("SLURM_NODEID", "0"))
    name = container.container_name(run.path.name, node, attempt)
    sweep_dir = run.path.parent.parent
    script = config.program.script
    guest = container.guest_for(spec, runtime, sweep_dir, workdir, script, private, name)
    container.copy_package(guest)
    found = probe(guest, env, host)
    digest = submitted.digest if submitted is not None else None
    return guest, {"runtime": runtime, "image": spec.image, "digest": digest, **found}


def probe(guest: Guest, env: Mapping[str, str], host: str) -> dict[str, Any]:
    """The image's Python and Paddle, asked inside the image (PROBE)."""
    probe_env = container.guest_env(env)
    container.with_pythonpath(probe_env, guest.pythonpath, {})
    argv = [guest.python, "-c", PROBE]
    command = container.command(replace(guest, name=guest.name + "-probe"), argv, probe_env, False)
    done: subprocess.CompletedProcess[str] | None = None
    try:
        done = subprocess.run(  # noqa: S603
            command, env=probe_env, cwd=guest.workdir, capture_output=True, text=True, timeout=600
        )
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        said = done.stderr.strip()[-800:] if done is not None else str(exc)
        raise ImageError(
            f"on {host}, {guest.runtime} could not run {guest.python} in {guest.image}: {said} "
            "(cluster.container.python names the image's interpreter)"
        ) from exc
    if "error" in found or found.get("paddle") is None:
        raise ImageError(
            f"the image {guest.image} has no Paddle for {found.get('python')} "
            f"({found.get('error', 'paddlepaddle is not installed')}); use a Paddle image, or "
            "name its interpreter in cluster.container.python."
        )
    return dict(found)
