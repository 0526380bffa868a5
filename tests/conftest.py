from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
_cluster_answer: str | None = None


def _cluster_problem() -> str:
    """'' when the test cluster answers, else why not (checked once per session)."""
    global _cluster_answer
    if _cluster_answer is None:
        if shutil.which("scontrol") is None:
            _cluster_answer = "Slurm's client tools are not installed (run slurm/up)"
        else:
            ping = subprocess.run(
                ["scontrol", "ping"], capture_output=True, text=True, timeout=30, check=False
            )
            first_line = (ping.stdout.strip() or ping.stderr.strip() or "no answer").splitlines()[0]
            _cluster_answer = (
                "" if "UP" in ping.stdout else f"no Slurm controller answers: {first_line}"
            )
    return _cluster_answer


def pytest_configure(config: pytest.Config) -> None:
    # Sweeps the tests submit go to an index of their own, not the user's (`paddle-hpc list`).
    index = tempfile.mkdtemp(prefix="paddle-hpc-test-index-")
    os.environ["PADDLE_HPC_INDEX"] = os.path.join(index, "sweeps.jsonl")  # noqa: PTH118


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("slurm") is None:
        return
    problem = _cluster_problem()
    if not problem:
        return
    if IN_CI:
        pytest.fail(f"CI=true and the test cluster is missing: {problem}", pytrace=False)
    pytest.skip(f"{problem}; start it with `slurm/up`")


SUITES = Path(__file__).parent / "suites"
SUITE_ENVS = Path(os.environ.get("PADDLE_HPC_SUITE_ENVS", "/var/tmp/paddle-hpc-suites"))


@pytest.fixture(scope="session")
def paddlenlp_python() -> str:
    """The interpreter of an environment with PaddleNLP, made once from
    tests/suites/paddlenlp-requirements.txt (a few minutes the first time), where
    paddle_hpc is importable from this checkout: the compute nodes' cluster.python."""
    requirements = SUITES / "paddlenlp-requirements.txt"
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    env = SUITE_ENVS / f"paddlenlp-{key}"
    python = env / "bin" / "python"
    ready = env / ".ready"
    if not ready.exists():
        shutil.rmtree(env, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)],
            check=True,
            timeout=1800,
        )
        ready.touch()
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "paddle_hpc_checkout.pth").write_text(f"{Path(__file__).parent.parent}\n")
    return str(python)
