"""Hand-made sweep directories, as paddle_hpc.sweep and the compute nodes leave them."""

from __future__ import annotations

import json
from pathlib import Path

from paddle_hpc.core.manifest import Manifest, RunEntry, save


def make_sweep(root: Path, runs: dict[str, dict[str, str]], parsers: bool = False) -> Path:
    """A local sweep directory as paddle_hpc.sweep writes it, with these runs' files.
    With `parsers`, its config names the two parsers below (importable in this process)."""
    entries = tuple(
        RunEntry(run_id, i, tuple(f"{k}={v}" for k, v in swept.items()), swept, 0)
        for i, (run_id, swept) in enumerate(runs.items())
    )
    axes = tuple(dict.fromkeys(k for swept in runs.values() for k in swept))
    manifest = Manifest("t", "2026-01-01", ("sweep",), "local", axes, ({},), entries)
    save(root, manifest)
    config = "collect:\n  patterns: ['custom (?P<step>\\d+) f1=(?P<f1>\\S+)']\n"
    if parsers:
        config += "  parsers: ['tests.fakes:bleu_parser', 'tests.fakes:broken_parser']\n"
    (root / "config.yaml").write_text(config)
    return root


def bleu_parser(line: str) -> dict[str, float] | None:
    """A user's own parser, as collect.parsers names it: 'BLEU 31.2 @ 500'."""
    if not line.startswith("BLEU "):
        return None
    value, _, step = line[5:].partition(" @ ")
    return {"bleu": float(value), "step": int(step)}


def broken_parser(line: str) -> dict[str, float] | None:
    if "BLEU" in line:
        raise RuntimeError("a bug in the user's parser")
    return None


def write_run(
    root: Path, run_id: str, metrics: str, log: str = "", state: str = "COMPLETED"
) -> None:
    run_dir = root / "runs" / run_id
    (run_dir / "logs" / "node0").mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text(metrics)
    (run_dir / "logs" / "node0" / "workerlog.0").write_text(log)
    (run_dir / "state.json").write_text(json.dumps({"state": state, "restarts": 1}))
