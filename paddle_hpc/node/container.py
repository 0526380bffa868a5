"""Each node's launcher inside a container image: Apptainer, Singularity, Charliecloud or
Podman (`cluster.container`).

Only Paddle's launcher and what it starts run inside; the node runner stays on the
host, with Slurm's environment, the run's state and its signals. The sweep folder, the
training code's folder and the working folder are bound at the same paths inside as
outside. The training script's `import paddle_hpc` works in a stock image: each
attempt copies the (pure Python) package to a private folder in /dev/shm, which every
runtime shares with its containers, and puts that on the PYTHONPATH.

The image's identity (image_digest.py) is taken at submission and checked on every
node before its launcher starts: the same Paddle everywhere, or the run fails naming
both. Node side: no pandas, no Hydra.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddle_hpc.core.errors import ConfigError, PaddleHpcError
from paddle_hpc.core.schema import ContainerConfig

PACKAGE = Path(__file__).resolve().parent.parent  # paddle_hpc/
# the program each runtime is run with, in the order `auto` tries them
PROGRAMS = {
    "apptainer": "apptainer",
    "singularity": "singularity",
    "charliecloud": "ch-run",
    "podman": "podman",
}
# which runtimes can run which kind of image
RUNS = {
    "sif": ("apptainer", "singularity"),
    "squashfs": ("charliecloud", "apptainer", "singularity"),
    "dir": ("charliecloud", "apptainer", "singularity"),
    "name": ("podman",),
}
SIF_SUFFIXES = (".sif", ".simg")
FILE_SUFFIXES = (*SIF_SUFFIXES, ".sqfs", ".squashfs", ".img")
# Host variables that would make the image's Python or libraries the host's.
HOST_ONLY = frozenset(
    {
        "PATH",
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONUSERBASE",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "CONDA_EXE",
        "CONDA_PYTHON_EXE",
        "CONDA_SHLVL",
        "TMPDIR",
    }
)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# what ch-run shares with every container by itself: no bind needed below these
CHARLIECLOUD_SHARED = (Path("/tmp"), Path("/dev"))
# an image's own top folders: Charliecloud binds one level deeper under these
SYSTEM_DIRS = frozenset(
    [
        "bin",
        "boot",
        "dev",
        "etc",
        "lib",
        "lib32",
        "lib64",
        "libx32",
        "opt",
        "proc",
        "run",
        "sbin",
        "srv",
        "sys",
        "usr",
        "var",
    ]
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class ImageError(PaddleHpcError):
    """The image is missing, cannot be run, or is not the one submitted."""


def image_kind(image: str) -> str:
    """'dir' (a Charliecloud or Apptainer sandbox folder), 'sif', 'squashfs' (another
    image file) or 'name' (a Podman image). A path that does not exist raises."""
    path = Path(image).expanduser()
    if path.is_dir():
        return "dir"
    if path.is_file():
        return "sif" if path.suffix in SIF_SUFFIXES else "squashfs"
    if image.startswith(("/", ".", "~")) or image.endswith(FILE_SUFFIXES):
        raise ConfigError(
            f"cluster.container.image is {image!r}, and there is no such file or folder. "
            "Give an Apptainer .sif file, a Charliecloud image folder or SquashFS file, or "
            "a Podman image name such as docker.io/paddlepaddle/paddle:3.0.0."
        )
    return "name"


def compatible(runtime: str, kind: str) -> tuple[str, ...]:
    """The runtimes that may run an image of this kind: `runtime` itself, or every one
    that can for auto. Raises ConfigError when the one named cannot."""
    able = RUNS[kind]
    if runtime == "auto":
        return able
    if runtime not in able:
        raise ConfigError(
            f"cluster.container.runtime is {runtime!r}, which cannot run a {kind} image; "
            f"use {' or '.join(able)} (or auto)."
        )
    return (runtime,)


def pick_runtime(runtime: str, kind: str, which: Callable[[str], str | None]) -> str:
    """The runtime to use on this node: the one named, or the first found for auto."""
    for name in compatible(runtime, kind):
        if which(PROGRAMS[name]):
            return name
    wanted = " or ".join(PROGRAMS[n] for n in compatible(runtime, kind))
    raise ImageError(
        f"cluster.container: {wanted} is not on this node's PATH; install it, or load its "
        "module in cluster.setup (e.g. 'module load apptainer')."
    )


def bind_points(runtime: str, paths: Iterable[Path]) -> list[Path]:
    """The folders to bind at the same path so that `paths` are seen inside. Charliecloud
    binds onto folders the image has, so it binds each path's top folder (one level
    deeper under an image's own folders such as /opt), and nothing under /tmp or /dev,
    which it shares anyway. The others bind each path itself."""
    points: list[Path] = []
    for path in paths:
        if runtime == "charliecloud":
            if any(path.is_relative_to(shared) for shared in CHARLIECLOUD_SHARED):
                continue
            parts = path.parts[1:]
            depth = 2 if parts and parts[0] in SYSTEM_DIRS else 1
            path = Path("/", *parts[:depth])
        points.append(path)
    unique = sorted(set(points))
    return [p for p in unique if not any(p != q and p.is_relative_to(q) for q in unique)]


def missing_mount_points(image: Path, points: Iterable[Path]) -> list[Path]:
    """The bind points a Charliecloud image folder lacks (ch-run cannot create them)."""
    return [p for p in points if not (image / p.relative_to("/")).is_dir()]


def charliecloud_hosts(image: Path) -> str | None:
    """What a Charliecloud image folder needs so that ranks on other nodes can be found:
    ch-run binds the host's /etc/hosts only onto an image that has one."""
    if (image / "etc" / "hosts").is_file():
        return None
    return (
        f"cluster.container.image {image} has no /etc/hosts, so ch-run does not bind the "
        "host's, and Paddle cannot find the nodes by name inside: create it "
        f"(touch {image}/etc/hosts) and submit again."
    )


def check(spec: Mapping[str, Any], cwd: Path, shared: Sequence[Path]) -> str:
    """A run's cluster.container checked at planning: the image exists and the runtime
    can run it; a Charliecloud folder has the mount points `shared` needs. Returns the
    image, a path made absolute (relative ones are to where the sweep starts)."""
    image = str(spec["image"])
    path = cwd / Path(image).expanduser()
    if path.exists() or image.startswith(("/", ".", "~")) or image.endswith(FILE_SUFFIXES):
        image = str(path.resolve())
    kind = image_kind(image)
    runtimes = compatible(str(spec["runtime"]), kind)
    if kind == "dir" and runtimes[0] == "charliecloud":
        missing = missing_mount_points(Path(image), bind_points("charliecloud", shared))
        if missing:
            names = " ".join(str(p) for p in missing)
            raise ConfigError(
                f"cluster.container.image {image} has no folder {names}, and Charliecloud "
                f"binds the sweep and code folders onto it: create it in the image "
                f"(mkdir -p {' '.join(image + str(p) for p in missing)}, or RUN mkdir -p "
                f"{names} when the image is built) and submit again."
            )
        if (problem := charliecloud_hosts(Path(image))) is not None:
            raise ConfigError(problem)
    return image


@dataclass(frozen=True)
class Guest:
    """How this node runs its launcher in the image."""

    runtime: str  # apptainer, singularity, charliecloud or podman
    image: str
    python: str  # the interpreter inside
    binds: tuple[str, ...]  # SRC or SRC:DST
    flags: tuple[str, ...]  # cluster.container.flags
    workdir: str
    pythonpath: str  # the folder holding the copy of paddle_hpc
    name: str = "paddle-hpc"  # Podman's name for the container
    image_env: bool = False  # Charliecloud: apply the image's /ch/environment


def command(guest: Guest, argv: Sequence[str], env_names: Iterable[str], gpu: bool) -> list[str]:
    """The runtime's command line that runs `argv` inside the image. GPUs reach it as
    each runtime expects: Apptainer's --nv, Podman's CDI device; Charliecloud uses the
    host's /dev and the libraries `ch-fromhost --nvidia` put in the image. The
    environment is the runtime's own (Apptainer and ch-run pass it on; Podman is told
    each name, and takes the value from its own environment, off the command line)."""
    if guest.runtime in ("apptainer", "singularity"):
        nv = ["--nv"] if gpu else []
        binds = [x for b in guest.binds for x in ("--bind", b)]
        return [
            guest.runtime,
            "exec",
            *nv,
            *binds,
            "--pwd",
            guest.workdir,
            *guest.flags,
            guest.image,
            *argv,
        ]
    if guest.runtime == "charliecloud":
        image_env = ["--set-env"] if guest.image_env else []
        binds = [x for b in guest.binds for x in ("-b", b)]
        return [
            "ch-run",
            *image_env,
            *binds,
            "-c",
            guest.workdir,
            *guest.flags,
            guest.image,
            "--",
            *argv,
        ]
    devices = ["--device", "nvidia.com/gpu=all"] if gpu else []
    names = [x for n in sorted(env_names) if _NAME.match(n) for x in ("--env", n)]
    return [
        "podman",
        "run",
        "--rm",
        "--init",
        "--name",
        guest.name,
        "--network=host",
        "--ipc=host",
        "--security-opt=label=disable",
        *devices,
        *[x for b in guest.binds for x in ("-v", b if ":" in b else f"{b}:{b}")],
        "--workdir",
        guest.workdir,
        *names,
        *guest.flags,
        guest.image,
        *argv,
    ]


def guest_for(
    spec: ContainerConfig,
    runtime: str,
    sweep_dir: Path,
    workdir: Path,
    script: str | None,
    private: Path,
    name: str,
) -> Guest:
    """How a node runs its launcher in `spec` (cluster.container) with `runtime`: the
    sweep, working, code and private folders bound at their own paths, then its binds.
    The copy of paddle_hpc goes to private/python."""
    assert spec.image is not None
    shared = [sweep_dir, workdir, private, *([Path(script).parent] if script else [])]
    image_env = runtime == "charliecloud" and (Path(spec.image) / "ch" / "environment").is_file()
    return Guest(
        runtime=runtime,
        image=spec.image,
        python=spec.python,
        binds=(*(str(p) for p in bind_points(runtime, shared)), *spec.binds),
        flags=tuple(spec.flags),
        workdir=str(workdir),
        pythonpath=str(private / "python"),
        name=name,
        image_env=image_env,
    )


def cleanup(guest: Guest) -> list[str] | None:
    """What removes a container its runtime may leave behind once its client is gone."""
    if guest.runtime == "podman":
        return ["podman", "rm", "--force", "--ignore", guest.name]
    return None


def guest_env(env: Mapping[str, str]) -> dict[str, str]:
    """The host environment without what would point the image's Python at the host's
    interpreter, packages or libraries; a plain PATH for images that set none; and USER,
    which ch-run refuses to start without."""
    kept = {k: v for k, v in env.items() if k not in HOST_ONLY and not k.startswith("BASH_FUNC_")}
    kept["PATH"] = DEFAULT_PATH
    kept.setdefault("USER", getpass.getuser())
    return kept


def with_pythonpath(env: dict[str, str], folder: str, wanted: Mapping[str, str]) -> None:
    """The copy of paddle_hpc first on PYTHONPATH, before any launch.env gives."""
    given = wanted.get("PYTHONPATH")
    env["PYTHONPATH"] = folder + (f":{given}" if given else "")


def container_name(run_id: str, node: int, attempt: int) -> str:
    """A Podman container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*), one per launcher."""
    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return f"paddle-hpc-{clean}-n{node}-a{attempt}-{os.getpid()}"


def copy_package(guest: Guest) -> None:
    """paddle_hpc copied to the guest's PYTHONPATH folder."""
    target = Path(guest.pythonpath) / PACKAGE.name
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
