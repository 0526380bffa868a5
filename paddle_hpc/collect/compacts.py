"""Which of a collect's changed files the nodes' compact files (parse/compact.py) cover:
a source is taken from one while its fingerprint is the one it had when its node
read it, a worker log only while the sweep reads logs as it did then."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from paddle_hpc.collect.sources import RunFiles
from paddle_hpc.core.layout import compact, rel_run
from paddle_hpc.parse import jsonl
from paddle_hpc.parse.compact import Compact, Unreadable, nodes, read, rows_of
from paddle_hpc.parse.log_rows import LogRows, Reading

log = logging.getLogger(__name__)


@dataclass
class Covered:
    rows: jsonl.Columns  # the metrics files' rows, file i being rels[i]
    rels: list[str]
    logs: dict[str, LogRows]


def covered(
    sweep_dir: Path,
    runs: Sequence[RunFiles],
    changed: set[str],
    files: Mapping[str, Sequence[int]],
    how: Reading,
) -> Covered:
    """The rows of the changed files that the runs' compact files hold as they are now."""
    root = str(sweep_dir)
    parts: list[tuple[Compact, list[int]]] = []
    paths, logs = [], []
    for run in runs:
        own = [rel for rel in (run.metrics, *run.gpu) if rel] + [r for r, _, _ in run.worker_logs]
        if not (wanted := [rel for rel in own if rel in changed]):
            continue
        for node in nodes(wanted):
            path = f"{root}/{rel_run(run.run_id)}/{compact(node)}"
            try:
                found = read(path)
            except FileNotFoundError:
                continue
            except (OSError, Unreadable) as exc:
                log.warning("%s: unreadable (%s); its run's text files are read", path, exc)
                continue
            now = [
                i
                for i, (rel, fp) in enumerate(zip(found.sources, found.prints, strict=True))
                if rel in changed and list(files.get(rel, ())) == list(fp)
            ]
            same_reading = (found.patterns, found.parsers) == (how.pattern_texts, how.parser_texts)
            parts.append((found, now))
            paths.append(path)
            logs.append(found.logs(changed, files) if same_reading else {})
    rows, bad = rows_of(parts)
    for k in bad:
        log.warning("%s: damaged; its run's text files are read", paths[k])
    good = [k for k in range(len(parts)) if k not in bad]
    rels = [parts[k][0].sources[i] for k in good for i in parts[k][1]]
    return Covered(rows, rels, {rel: r for k in good for rel, r in logs[k].items()})
