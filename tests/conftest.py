from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

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
