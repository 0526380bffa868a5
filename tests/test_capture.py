"""What a sweep and each node record of their environment: a real git repository, the
installed packages, and a node's record with secret-looking values redacted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from paddle_hpc.node.capture import (
    cuda_version_in,
    git_state,
    node_environment,
    packages,
    paddle_cuda_version,
    sweep_environment,
    write_sweep_environment,
)


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )


def test_git_commit_dirty_and_diff(tmp_path: Path) -> None:
    assert git_state(tmp_path) == (None, "")  # no repository
    git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text("lr = 0.1\n")
    git(tmp_path, "add", "train.py")
    git(tmp_path, "commit", "-q", "-m", "first")
    info, diff = git_state(tmp_path)
    assert info is not None and info["dirty"] is False and len(info["commit"]) == 40
    assert diff == ""
    (tmp_path / "train.py").write_text("lr = 0.2\n")
    info, diff = git_state(tmp_path)
    assert info is not None and info["dirty"] is True and "+lr = 0.2" in diff
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    write_sweep_environment(sweep, tmp_path)
    record = json.loads((sweep / "environment.json").read_text())
    assert record["git"] == info and "+lr = 0.2" in (sweep / "git.diff").read_text()


def test_packages_and_paddle() -> None:
    installed = packages()
    assert "paddlepaddle" in installed and "pandas" in installed
    record, _ = sweep_environment(Path.cwd())
    assert record["paddle"] == {"paddlepaddle": installed["paddlepaddle"]}
    assert record["paddle_cuda_build"] is False and record["python"].count(".") == 2


def test_a_nodes_record_redacts_secret_names() -> None:
    env = {"CUDA_VISIBLE_DEVICES": "0,1", "HF_TOKEN": "abc123", "PATH": "/bin"}
    record = node_environment(env, "gpu", "12.6")
    assert record["cuda_visible_devices"] == "0,1" and record["paddle_cuda_version"] == "12.6"
    assert record["environment"] == {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "HF_TOKEN": "<redacted>",
        "PATH": "/bin",
    }


def test_the_cuda_build_is_read_without_importing_paddle() -> None:
    import paddle  # the oracle: what the installed build says of itself

    assert (paddle_cuda_version() is not None) == paddle.device.is_compiled_with_cuda()
    gpu = "full_version    = '3.0.0'\ncuda_version     = '12.6'\ncudnn_version    = '9.5.1'\n"
    assert cuda_version_in(gpu) == "12.6"
    assert cuda_version_in("cuda_version = 'False'\nwith_mkl = 'ON'\n") is None
    with pytest.raises(LookupError):
        cuda_version_in("full_version = '3.0.0'\n")


def test_the_node_runner_does_not_import_paddle() -> None:
    code = (
        "import sys; from paddle_hpc.node.runner import paddle_has_cuda; paddle_has_cuda(); "
        "print('paddle' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
