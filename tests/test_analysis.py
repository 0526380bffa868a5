"""The analysis/ scripts answer their questions on a hand-made sweep."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fakes import make_sweep, write_run

ROOT = Path(__file__).resolve().parent.parent


def script(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "analysis" / name), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def sweep(root: Path) -> Path:
    runs = {f"r{lr}_{bs}": {"lr": lr, "bs": bs} for lr in ("0.1", "0.01") for bs in ("32", "64")}
    make_sweep(root, runs)
    accs = {
        "r0.1_32": (0.5, 0.9),
        "r0.01_32": (0.4, 0.6),
        "r0.1_64": (0.3, 0.4),
        "r0.01_64": (0.6, 0.8),
    }
    for run_id, (first, last) in accs.items():
        write_run(root, run_id, f'{{"step": 0, "acc": {first}}}\n{{"step": 1, "acc": {last}}}\n')
    return root


def test_best_learning_rate_per_batch_size(tmp_path: Path) -> None:
    out = script(
        "best_per_group.py",
        str(sweep(tmp_path)),
        "--metric",
        "final.acc",
        "--key",
        "lr",
        "--by",
        "bs",
    )
    rows = [line.split() for line in out.splitlines()[2:]]
    assert rows == [["32", "0.10", "0.9"], ["64", "0.01", "0.8"]]


def test_mean_learning_curves_per_key(tmp_path: Path) -> None:
    out = script("learning_curves.py", str(sweep(tmp_path)), "--metric", "acc", "--key", "bs")
    lines = out.splitlines()
    assert lines[2].split() == ["0", "0.45", "0.45"] and lines[3].split() == ["1", "0.75", "0.6"]
    assert lines[-1] == "best step: bs=32: 1, bs=64: 1"
