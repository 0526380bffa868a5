"""The container seam's pure parts: image kinds, runtimes, binds, environment, the
command lines of each runtime (golden file), and the image's identity."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from paddle_hpc.core.errors import ConfigError
from paddle_hpc.core.schema import ContainerConfig, Runtime
from paddle_hpc.node import container
from paddle_hpc.node.container import Guest, ImageError
from paddle_hpc.node.image_digest import ImageId, content_digest, identify, verify

GOLDEN = Path(__file__).parent / "golden" / "container_commands.txt"


def image_folder(root: Path, *folders: str) -> Path:
    image = root / "img"
    for folder in ("etc", "ch", *folders):
        (image / folder).mkdir(parents=True, exist_ok=True)
    (image / "etc" / "hosts").write_text("")
    (image / "bin").mkdir()
    (image / "bin" / "python3").write_text("#!/bin/sh\n")
    (image / "lib").symlink_to("usr/lib")
    return image


def test_image_kinds(tmp_path: Path) -> None:
    (tmp_path / "paddle.sif").write_bytes(b"SIF")
    (tmp_path / "paddle.sqfs").write_bytes(b"hsqs")
    assert container.image_kind(str(tmp_path)) == "dir"
    assert container.image_kind(str(tmp_path / "paddle.sif")) == "sif"
    assert container.image_kind(str(tmp_path / "paddle.sqfs")) == "squashfs"
    assert container.image_kind("docker.io/paddlepaddle/paddle:3.0.0-gpu") == "name"
    for missing in (str(tmp_path / "gone"), "images/paddle.sif", "./paddle"):
        with pytest.raises(ConfigError, match=r"cluster\.container\.image is .*no such file"):
            container.image_kind(missing)


def test_runtimes_that_can_run_an_image() -> None:
    assert container.compatible("auto", "sif") == ("apptainer", "singularity")
    assert container.compatible("podman", "name") == ("podman",)
    with pytest.raises(ConfigError, match=r"runtime is 'charliecloud', which cannot run a sif"):
        container.compatible("charliecloud", "sif")
    found = {"singularity": "/usr/bin/singularity", "ch-run": "/usr/bin/ch-run"}
    assert container.pick_runtime("auto", "sif", found.get) == "singularity"
    assert container.pick_runtime("auto", "dir", found.get) == "charliecloud"
    with pytest.raises(ImageError, match=r"podman is not on this node's PATH"):
        container.pick_runtime("auto", "name", found.get)


def test_bind_points() -> None:
    paths = [
        Path("/work/main/sweeps/a b"),
        Path("/work/main/paddle_hpc/examples"),
        Path("/tmp/pytest-of-root/x"),
        Path("/dev/shm/paddle-hpc-1"),
        Path("/opt/data/set"),
        Path("/home/ana"),
    ]
    assert container.bind_points("charliecloud", paths) == [
        Path("/home"),
        Path("/opt/data"),
        Path("/work"),
    ]
    nested = [Path("/work/main/sweeps/a b"), Path("/work/main"), Path("/dev/shm/p")]
    assert container.bind_points("apptainer", nested) == [Path("/dev/shm/p"), Path("/work/main")]


def test_guest_environment_is_not_the_hosts_python() -> None:
    host = {
        "PATH": "/work/.venv/bin:/usr/bin",
        "LD_LIBRARY_PATH": "/opt/cuda-host/lib64",
        "PYTHONPATH": "/work/lib",
        "VIRTUAL_ENV": "/work/.venv",
        "BASH_FUNC_module%%": "() { eval ...; }",
        "SLURM_JOB_ID": "7",
        "CUDA_VISIBLE_DEVICES": "2,3",
        "HOME": "/home/ana",
    }
    env = container.guest_env(host)
    assert env["PATH"] == container.DEFAULT_PATH
    assert env["SLURM_JOB_ID"] == "7" and env["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert {"LD_LIBRARY_PATH", "PYTHONPATH", "VIRTUAL_ENV", "BASH_FUNC_module%%"}.isdisjoint(env)
    assert env["USER"]  # ch-run refuses to start without it
    container.with_pythonpath(env, "/dev/shm/p/python", {"PYTHONPATH": "/data/my lib"})
    assert env["PYTHONPATH"] == "/dev/shm/p/python:/data/my lib"


IMAGES = {"charliecloud": "/data/images/paddle 3.0 'gpu'", "podman": "paddle:3.0-gpu"}


def ugly_guest(runtime: str) -> Guest:
    return Guest(
        runtime=runtime,
        image=IMAGES.get(runtime, "/data/images/paddle 3.0 'gpu'.sif"),
        python="python3",
        binds=("/scratch/ana/sweeps/$(id)", "/data/sets:/datasets"),
        flags=("--no-home",) if runtime != "podman" else ("--shm-size=8g",),
        workdir="/scratch/ana/my code",
        pythonpath="/dev/shm/paddle-hpc-1/python",
        name="paddle-hpc-r1-n0-a1-42",
        image_env=runtime == "charliecloud",
    )


def golden_text() -> str:
    argv = ["python3", "-m", "paddle.distributed.launch", "--nnodes", "2", "train.py", "--x=$(y)"]
    env = {"SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "0,1", "BASH_FUNC_ml%%": "x"}
    lines = []
    for runtime in ("apptainer", "singularity", "charliecloud", "podman"):
        for gpu in (True, False):
            command = container.command(ugly_guest(runtime), argv, env, gpu)
            lines.append(f"# {runtime}, {'GPU' if gpu else 'CPU'} build\n{shlex.join(command)}")
        cleanup = container.cleanup(ugly_guest(runtime))
        if cleanup:
            lines.append(f"# {runtime}, after its launcher\n{shlex.join(cleanup)}")
    return "\n".join(lines) + "\n"


def test_command_lines_golden() -> None:
    text = golden_text()
    if os.environ.get("PADDLE_HPC_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")
    assert "--nv" in text and "nvidia.com/gpu=all" in text
    for line in text.splitlines():
        if not line.startswith("#"):  # what reaches the runtime is what the golden shows
            shlex.split(line)


def test_check_at_planning(tmp_path: Path) -> None:
    image = image_folder(tmp_path, "work")
    spec = {"image": str(image), "runtime": "auto"}
    assert container.check(spec, tmp_path, [Path("/work/x"), Path("/tmp/y")]) == str(image)
    relative = {"image": "img", "runtime": "auto"}
    assert container.check(relative, tmp_path, [Path("/work/x")]) == str(image)
    with pytest.raises(ConfigError, match=r"has no folder /scratch.*mkdir -p .*img/scratch"):
        container.check(spec, tmp_path, [Path("/scratch/ana/sweeps")])
    with pytest.raises(ConfigError, match=r"cannot run a dir image"):
        container.check({**spec, "runtime": "podman"}, tmp_path, [])
    (image / "etc" / "hosts").unlink()
    with pytest.raises(ConfigError, match=r"has no /etc/hosts.*touch"):
        container.check(spec, tmp_path, [Path("/work/x")])


def test_identity_of_a_folder(tmp_path: Path) -> None:
    image = image_folder(tmp_path)
    submitted = identify(str(image))
    verify(submitted, "n1")  # unchanged
    os.utime(image / "bin" / "python3", ns=(1, 1))  # rewritten, same bytes: same digest
    verify(submitted, "n1")
    (image / "bin" / "python3").write_text("#!/bin/sh\nexit 1\n")
    with pytest.raises(ImageError) as caught:
        verify(submitted, "n2")
    now = identify(str(image)).digest
    message = str(caught.value)
    assert submitted.digest in message and now in message and "n2" in message
    assert submitted.digest != now and now.startswith("sha256:")
    (image / "lib").unlink()
    (image / "lib").symlink_to("usr/lib64")  # a link's target is content too
    assert identify(str(image)).digest != now


def test_identity_of_a_file_is_cached_by_fingerprint(tmp_path: Path) -> None:
    sif = tmp_path / "paddle.sif"
    sif.write_bytes(b"A" * 1000)
    cache = tmp_path / "cache"
    first = identify(str(sif), cache=cache)
    assert first.digest == content_digest(sif)
    stat = sif.stat()
    sif.write_bytes(b"B" * 1000)  # same size; the same times put back: the cache answers
    os.utime(sif, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert identify(str(sif), cache=cache).digest == first.digest
    assert identify(str(sif)).digest != first.digest  # without a cache: read
    (cache / "image-digests.json").write_text("{not json")
    assert identify(str(sif), cache=cache).digest != first.digest


def test_identity_of_a_podman_image() -> None:
    asked: list[list[str]] = []

    def podman(argv: list[str]) -> str:
        asked.append(argv)
        return "9f1c2d\n"

    found = identify("docker.io/paddlepaddle/paddle:3.0.0", podman)
    assert found == ImageId("docker.io/paddlepaddle/paddle:3.0.0", "podman:9f1c2d", "podman:9f1c2d")
    assert asked == [
        ["podman", "image", "inspect", "--format", "{{.Id}}", "docker.io/paddlepaddle/paddle:3.0.0"]
    ]
    with pytest.raises(ImageError, match=r"was podman:9f1c2d then, and is podman:aa on n1"):
        verify(found, "n1", lambda argv: "aa")


def test_config_schema() -> None:
    spec = ContainerConfig(image="x.sif")
    assert spec.runtime is Runtime.auto and spec.python == "python3"
