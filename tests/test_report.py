"""The HTML report, on a hand-made sweep directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from paddle_hpc.collect import load
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.pages.static import write_report
from tests.fakes import make_sweep, write_run

CRASH = "Traceback (most recent call last):\n  File \"t.py\", line 1\nKeyError: '<b>x</b>'\n"


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = make_sweep(
        tmp_path / "s",
        {
            "ra": {"lr": "0.1", "model": "vit"},
            "rb": {"lr": "0.01", "model": "cnn"},
            "rc": {"lr": "1", "model": "cnn"},
        },
    )
    write_run(
        root, "ra", '{"step": 0, "loss": 2.0, "acc": 0.1}\n{"step": 1, "loss": 1.0, "acc": 0.5}\n'
    )
    write_run(root, "rb", '{"step": 0, "loss": 3.0}\n')
    write_run(root, "rc", "", CRASH, state="FAILED")
    return root


def test_the_report_has_its_table_plots_and_failures(sweep: Path, tmp_path: Path) -> None:
    page = write_report(load(sweep), tmp_path / "report", "sweep s", color="model")
    text = page.read_text()
    for run_id in ("ra", "rb", "rc"):
        assert f"<th>{run_id}</th>" in text
    assert "coloured by model" in text and text.count("<img ") == 2 + 2  # loss, acc; 2 finals
    for image in sorted((tmp_path / "report").glob("*.png")):
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size > 2000
    assert "KeyError" in text and "&lt;b&gt;x&lt;/b&gt;" in text and "<b>x</b>" not in text
    # a run with no history, reason or exit code shows blank cells, not None or <NA>
    assert "<td>None</td>" not in text and "&lt;NA&gt;" not in text
    assert "<h2>Cost</h2>\n<p>charged: nothing in Slurm&#x27;s accounting" in text


def test_gpu_samples_get_one_plot_in_cost_not_a_curve_each(sweep: Path, tmp_path: Path) -> None:
    line = '{{"step": null, "time": {t}, "attempt": 1, "sys.gpu.0.util": {u}, '
    line += '"sys.gpu.0.mem_used_mb": 100, "sys.gpu.1.util": 0}}\n'
    samples = "".join(line.format(t=1_800_000_000 + 30 * i, u=90 + i) for i in range(4))
    (sweep / "runs" / "ra" / "gpu-node0.jsonl").write_text(samples)
    page = write_report(load(sweep), tmp_path / "report", "sweep s", color="model")
    text = page.read_text()
    cost = text[text.index("<h2>Cost</h2>") : text.index("<h2>Runs</h2>")]
    assert "GPU utilisation: mean 46% over 1 run(s) with samples" in cost  # (91.5 + 0) / 2
    assert "<img src='gpu_util.png'" in cost and (tmp_path / "report" / "gpu_util.png").exists()
    assert text.count("<img ") == 1 + 2 + 2 and "alt='sys.gpu" not in text  # loss, acc


def test_an_unknown_colour_key_is_refused(sweep: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a swept key"):
        write_report(load(sweep), tmp_path / "r", "t", color="optim.lr")


def test_the_command_writes_into_the_sweep(sweep: Path) -> None:
    def report(*flags: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "paddle_hpc.report", str(sweep), *flags],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return (sweep / "report" / "index.html").read_text()

    assert "Bokeh" in report() and not (sweep / "report" / "curve_0.png").exists()
    assert "final.loss" in report("--objective", "final.loss")
    assert "max_rss_mb" in report("--objective", "max_rss_mb")  # a column not shown otherwise
    refused = subprocess.run(
        [sys.executable, "-m", "paddle_hpc.report", str(sweep), "--objective", "final.f1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0 and "--objective final.f1: the runs table has no" in (
        refused.stderr
    )
    assert "<img src='curve_0.png'" in report("--png")
    assert (sweep / "report" / "curve_0.png").exists()
