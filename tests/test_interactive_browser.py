"""The interactive report in a real browser: Debian's Chromium through Playwright.
Screenshots go to the test's folder."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Page, sync_playwright

from paddle_hpc.collect import Tables, load
from paddle_hpc.collect.gpu import GPU_COLUMNS
from paddle_hpc.collect.tables import ERROR_COLUMNS, METRIC_COLUMNS
from paddle_hpc.collect.usage import USAGE_COLUMNS
from paddle_hpc.pages.interactive import write_page
from tests.fakes import make_sweep, write_run

CHROMIUM = shutil.which("chromium")
MODEL = "((name) => Bokeh.documents[0].get_model_by_name(name))"


@contextlib.contextmanager
def chromium_page() -> Iterator[tuple[Page, list[str]]]:
    """A page in Debian's Chromium, and the errors its scripts raise or log."""
    assert CHROMIUM is not None, "no chromium: `make test` installs it (Debian's package)"
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        yield page, errors
        browser.close()


@pytest.fixture
def browser_page() -> Iterator[tuple[Page, list[str]]]:
    with chromium_page() as found:
        yield found


def open_in_chromium(path: Path, screenshot: Path) -> int:
    """Opens a report in Chromium: no error, and its canvases drawn (how many)."""
    with chromium_page() as (page, errors):
        opened(page, path)
        page.screenshot(path=str(screenshot), full_page=True)
        canvases = page.locator("canvas").count()
    assert errors == []
    return canvases


def opened(page: Page, path: Path) -> float:
    """Opens the report; how long until its plots were drawn, in seconds."""
    started = time.monotonic()
    page.goto(path.as_uri())
    page.wait_for_selector("canvas")
    page.wait_for_function("() => Bokeh.documents.length > 0")
    return time.monotonic() - started


def test_the_page_renders_filters_and_links_selection(
    tmp_path: Path, browser_page: tuple[Page, list[str]]
) -> None:
    page, errors = browser_page
    root = make_sweep(
        tmp_path / "s", {"ra": {"lr": "0.1"}, "rb": {"lr": "0.01"}, "rc": {"lr": "1"}}
    )
    write_run(root, "ra", '{"step": 0, "loss": 2.0, "ips": 9}\n{"step": 1, "loss": 1.0}\n')
    crash = 'Traceback (most recent call last):\n  File "t.py", line 1\nKeyError: "<b>"\n'
    write_run(root, "rb", '{"step": 0, "loss": 3.0}\n{"step": 1, "loss": 2.5}\n', crash, "FAILED")
    write_run(root, "rc", '{"step": 0, "loss": 1.0, "eval.acc": 0.5}\n')
    report = write_page(load(root), tmp_path / "report.html", "sweep s")
    opened(page, report)
    assert page.locator(".slick-row").count() == 3
    titles = page.evaluate("Bokeh.documents[0].roots()[0].children.map(c => c.text || '')")
    text = " ".join(titles)
    assert "Training curves" in text and "Evaluation curves" in text and "System curves" in text
    assert "KeyError" in text and "&lt;b&gt;" in text
    page.evaluate(f"{MODEL}('filter:state').value = ['FAILED']")
    page.wait_for_timeout(300)
    assert page.locator(".slick-row").count() == 1
    # the hover of a curve names the run's swept values
    assert page.evaluate(f"{MODEL}('curve:loss').data['lr']") == ["0.1", "0.01", "1.0"]
    page.evaluate(f"{MODEL}('runs').selected.indices = [0]")
    assert page.evaluate(f"{MODEL}('curve:loss').selected.indices") == [0]
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert errors == []


def synthetic(runs: int, steps: int) -> Tables:
    """A sweep of `runs` runs over two keys, each logging loss and acc for `steps` steps."""
    rng = np.random.default_rng(0)
    ids = [f"r{i:010x}" for i in range(runs)]
    lr, batch = rng.choice([1e-4, 1e-3, 1e-2], runs), rng.choice([32, 64, 128], runs)
    frame = pd.DataFrame({"optim.lr": lr, "data.batch_size": batch}, index=pd.Index(ids))
    frame["state"] = rng.choice(["COMPLETED", "FAILED", "TIMEOUT"], runs, p=[0.9, 0.05, 0.05])
    frame["elapsed_s"] = rng.integers(60, 3600, runs)
    frame["final.loss"] = rng.random(runs)
    for column in (*USAGE_COLUMNS, *GPU_COLUMNS):
        frame[column] = np.nan
    step = np.tile(np.arange(steps), runs)
    rates = np.repeat(100 + 900 * rng.random(runs), steps)
    loss = np.exp(-step / rates) + 0.02 * rng.random(runs * steps)
    run_ids = np.repeat(np.array(ids), steps)
    metrics = pd.concat(
        pd.DataFrame({"run_id": run_ids, "step": step, "name": name, "value": values})
        for name, values in (("loss", loss), ("acc", 1 - loss))
    )
    metrics["time"], metrics["attempt"], metrics["source"] = pd.NaT, 1, "runs/x/metrics.jsonl"
    errors = pd.DataFrame(columns=ERROR_COLUMNS)
    return Tables(frame, metrics[METRIC_COLUMNS], errors)


def test_a_thousand_runs_of_a_thousand_steps_mail_and_open_quickly(
    tmp_path: Path, browser_page: tuple[Page, list[str]]
) -> None:
    page, errors = browser_page
    report = write_page(synthetic(1000, 1000), tmp_path / "report.html", "sweep big")
    size = report.stat().st_size
    assert size <= 5_000_000, f"{size / 1e6:.2f} MB"
    took = opened(page, report)
    page.screenshot(path=str(tmp_path / "report.png"))
    # the 2 s target is benchmarks/report_page.py's; here only what no load excuses
    assert took < 10.0, f"{took:.2f} s to draw"
    assert page.evaluate(f"{MODEL}('curve:loss').data.xs.length") == 1000
    assert errors == []
