"""The interactive report of 1,000 runs x 1,000 steps: its size, and how long Chromium
takes to draw it, against a page of the same size without plots (the browser's floor
for reading that many bytes).

The sweep is the browser test's synthetic one: three swept keys, loss and acc logged
at every step and eval.acc every 100, and each run's two nodes' four GPUs sampled 60
times. Each page is opened in a fresh tab of Debian's Chromium through
Playwright, until its canvases are drawn; alternating, `--repeat` times, medians.

    make browser
    .venv/bin/python benchmarks/report_page.py [--repeat N]

Targets (issue 27): at most 5 MB; drawn in under 2 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from paddle_hpc.pages.interactive import write_page

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the browser test's sweep
from tests.test_interactive_browser import synthetic


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    assert chromium is not None, "make browser"
    with tempfile.TemporaryDirectory() as tmp:
        tables = synthetic(1000, 1000, 60)
        started = time.monotonic()
        page_file = write_page(tables, Path(tmp) / "report.html", "sweep big")
        built = time.monotonic() - started
        size = page_file.stat().st_size
        floor = Path(tmp) / "floor.html"  # the same bytes, as a comment: read, not drawn
        floor.write_text("<html><body><canvas></canvas><!--" + "x" * size + "--></body></html>")
        times: dict[str, list[float]] = {"report": [], "floor": []}
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            for _ in range(args.repeat):
                for name, path in (("report", page_file), ("floor", floor)):
                    tab = browser.new_page(viewport={"width": 1400, "height": 1400})
                    begun = time.monotonic()
                    tab.goto(path.as_uri())
                    tab.wait_for_selector("canvas")
                    if name == "report":
                        tab.wait_for_function("() => Bokeh.documents.length > 0")
                    times[name].append(time.monotonic() - begun)
                    tab.close()
            browser.close()
    report, base = statistics.median(times["report"]), statistics.median(times["floor"])
    print("| case | paddle_hpc | baseline | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| page size, 1,000 runs x 1,000 steps, GPU samples | {size / 1e6:.2f} MB | | | <= 5 MB: "
        f"{'met' if size <= 5e6 else 'MISSED'} |"
    )
    print(
        f"| drawn in Chromium | {report:.2f} s | {base:.2f} s (the same bytes, no plot) | "
        f"{report / base:.1f} | < 2 s: {'met' if report < 2 else 'MISSED'} |"
    )
    print(f"(built in {built:.2f} s)")


if __name__ == "__main__":
    main()
