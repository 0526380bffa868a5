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


def test_node_side_imports_neither_pandas_nor_hydra() -> None:
    code = (
        "import sys\n"
        "import paddle_hpc.node, paddle_hpc.launch, paddle_hpc.metrics\n"
        "heavy = {'pandas', 'hydra', 'omegaconf', 'pyarrow', 'matplotlib', 'rich'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_login_side_collector_imports_no_node_code() -> None:
    code = (
        "import sys\n"
        "import paddle_hpc.collect, paddle_hpc.status, paddle_hpc.list\n"
        "print(sorted(m for m in sys.modules if m in ('paddle_hpc.node', 'paddle_hpc.launch')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
