"""A collect with nothing changed, told quickly.

Every collect that can, saves `collect-check.json` beside the tables: each path it
looked at (the files and folders it stat'ed: for an ended run only its metrics file
and state.json), the fingerprint it saw, and those of its inputs, its tables and its
state file. While every path still has that fingerprint, nothing has changed: the next
collect stats those paths and stops, without reading its state or the manifest. A
collect saves the check only when the next one would reach the same answer from the
same fingerprints: every folder listing it used is trusted next time, and no Slurm
accounting is still to be asked for. Otherwise the old check is removed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from paddle_hpc.collect.results import VERSION
from paddle_hpc.collect.sources import Fingerprint, fingerprint
from paddle_hpc.core.files import write_atomic

CHECK_FILE = "collect-check.json"
MISSING = (-1, -1)


def unchanged(sweep_dir: Path, out: Path, fmt: str) -> bool:
    """Whether every path the last collect looked at still has the fingerprint it saw."""
    try:
        check = json.loads((out / CHECK_FILE).read_bytes())
        if check["version"] != VERSION or check["format"] != fmt:
            return False
        paths, prints = check["paths"], check["prints"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    root = str(sweep_dir)
    return bool(_flat(fingerprint(f"{root}/{rel}") for rel in paths) == prints)


def save(
    sweep_dir: Path,
    out: Path,
    fmt: str,
    looked: Mapping[str, Fingerprint | None],
    written: list[Path],
) -> None:
    """Saves what was looked at, with what it was seen to be, and the files just written
    (tables, state) as they are now."""
    seen = dict(looked)
    for path in written:
        seen[os.path.relpath(path, sweep_dir)] = fingerprint(path)
    prints = _flat(seen.values())
    text = json.dumps({"version": VERSION, "format": fmt, "paths": list(seen), "prints": prints})
    write_atomic(out / CHECK_FILE, text)


def _flat(prints: Iterable[Fingerprint | None]) -> list[int]:
    """Fingerprints as one flat list of numbers, a missing file as MISSING."""
    return [number for fp in prints for number in (fp or MISSING)]


def discard(out: Path) -> None:
    (out / CHECK_FILE).unlink(missing_ok=True)
