"""ruff and mypy (strict on paddle_hpc/) run as part of the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def check(*argv: str) -> None:
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}"


def test_ruff_lint() -> None:
    check(str(BIN / "ruff"), "check", ".")


def test_ruff_format() -> None:
    check(str(BIN / "ruff"), "format", "--check", ".")


def test_mypy_strict() -> None:
    check(str(BIN / "mypy"))


def test_no_module_shadows_the_standard_library() -> None:
    # run_module.py's folder is first on a training script's sys.path
    names = {path.stem for path in (ROOT / "paddle_hpc").glob("*.py")}
    assert not names & sys.stdlib_module_names


def imported(modules: str, expression: str) -> str:
    """What `expression` prints in a fresh Python once `modules` are imported."""
    code = f"import sys\nimport {modules}\nprint({expression})\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_node_side_imports_neither_pandas_nor_hydra() -> None:
    heavy = "{'pandas', 'hydra', 'omegaconf', 'pyarrow', 'matplotlib', 'rich'}"
    node_side = (
        "paddle_hpc.node.runner, paddle_hpc.node.launch, paddle_hpc.metrics, paddle_hpc.checkpoint"
    )
    assert (
        imported(node_side, f"sorted({{m.split('.')[0] for m in sys.modules}} & {heavy})") == "[]"
    )


def test_the_login_side_collector_imports_no_node_code() -> None:
    node = "('paddle_hpc.node.runner', 'paddle_hpc.node.launch')"
    login_side = "paddle_hpc.collect, paddle_hpc.status, paddle_hpc.list"
    assert imported(login_side, f"sorted(m for m in sys.modules if m in {node})") == "[]"
