"""The per-user index of submitted sweeps, which `list` reads.

One JSON line per submission in `$PADDLE_HPC_INDEX`, by default
`$XDG_STATE_HOME/paddle_hpc/sweeps.jsonl` (`~/.local/state/...`). Appended with one
write per line, so sweeps submitted at once do not mix their lines; a line that is not
JSON is skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    dir: Path
    name: str
    created: str


def index_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("PADDLE_HPC_INDEX"):
        return Path(env["PADDLE_HPC_INDEX"])
    state = Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "paddle_hpc" / "sweeps.jsonl"


def record(sweep_dir: Path, name: str, created: str, path: Path | None = None) -> None:
    path = path or index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"dir": str(sweep_dir.resolve()), "name": name, "created": created})
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def entries(path: Path | None = None) -> list[Entry]:
    """Each sweep directory once (its last line), newest first."""
    try:
        text = (path or index_path()).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    found: dict[str, Entry] = {}
    for line in text.splitlines():
        try:
            data = json.loads(line)
            entry = Entry(Path(data["dir"]), str(data["name"]), str(data["created"]))
        except (ValueError, KeyError, TypeError):
            continue
        found.pop(str(entry.dir), None)
        found[str(entry.dir)] = entry
    return sorted(found.values(), key=lambda e: e.created, reverse=True)
