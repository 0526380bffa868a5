"""One worker log's rows: its metrics (global rank 0's log only: the suites' lines, the
user's `collect.patterns` and `collect.parsers`) and its failures, as the collector and
a run's node (parse/compact.py) both read them."""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddle_hpc.core import layout
from paddle_hpc.core.errors import ConfigError
from paddle_hpc.metrics import whole_step
from paddle_hpc.parse import worker_logs

log = logging.getLogger(__name__)
LineParser = Callable[[str], "Mapping[str, float] | None"]
MetricRow = tuple[int | None, str, float]  # step, name, value


@dataclass(frozen=True)
class LogRows:
    attempt: int | None  # the attempt that wrote the log (its folder's mark)
    metrics: list[MetricRow]
    failures: list[worker_logs.Failure]


@dataclass(frozen=True)
class Reading:
    """How worker logs are read: `collect.patterns` and `collect.parsers` as the sweep's
    config.yaml gives them, and compiled or imported."""

    pattern_texts: tuple[str, ...]
    parser_texts: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    parsers: tuple[LineParser, ...]


def reading(config: Mapping[str, Any]) -> Reading:
    """The sweep config's way of reading its logs; ConfigError for a bad regex or parser."""
    collect = config.get("collect") or {}
    texts = tuple(str(t) for t in collect.get("patterns") or [])
    parser_texts = tuple(str(t) for t in collect.get("parsers") or [])
    try:
        patterns = tuple(re.compile(text) for text in texts)
    except re.error as exc:
        raise ConfigError(f"collect.patterns: {exc.pattern!r} is not a regex: {exc}") from exc
    parsers = []
    for text in parser_texts:
        module, _, name = text.partition(":")
        try:
            parsers.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(
                f"collect.parsers: cannot import {text!r} ({exc}); give 'package.module:function'."
            ) from exc
    return Reading(texts, parser_texts, patterns, tuple(parsers))


def read_log(text: str, rel: str, metrics: bool, how: Reading, attempt: int | None) -> LogRows:
    """A worker log's failures, and, when `metrics` (global rank 0's), its metrics."""
    lines = text.splitlines(keepends=True)
    found: list[MetricRow] = []
    if metrics:
        rows = worker_logs.log_metrics(lines, how.patterns)
        found = [(row.step, row.name, row.value) for row in rows]
        found += parsed_metrics(how.parsers, lines, rel)
    return LogRows(attempt, found, worker_logs.failures(lines))


def parsed_metrics(
    parsers: Sequence[LineParser], lines: Sequence[str], rel: str
) -> list[MetricRow]:
    """What the user's parsers find in the lines. A parser that raises, or returns a value
    that is not a number or a step that is not a whole number, is skipped for this file
    with a warning."""
    found: list[MetricRow] = []
    for parser in parsers:
        rows: list[MetricRow] = []
        try:
            for line in lines:
                values = dict(parser(line) or {})
                step = whole_step(values.pop("step", None))
                rows.extend((step, str(name), float(value)) for name, value in values.items())
        except Exception as exc:
            log.warning("%s: collect.parsers %r failed (%r); skipped", rel, parser, exc)
        else:
            found += rows
    return found


def attempt_of(log_file: Path) -> int | None:
    """The attempt that wrote a worker log: its folder's mark, which the node writes."""
    try:
        return int((log_file.parent / layout.ATTEMPT_MARK).read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None


def global_ranks(worker_logs: Sequence[tuple[str, int, int]]) -> dict[tuple[int, int], int]:
    """(node, local rank) -> global rank: paddle.distributed.launch numbers the ranks node
    by node, each node's local ranks in order."""
    pairs = sorted({(node, rank) for _, node, rank in worker_logs})
    return {pair: index for index, pair in enumerate(pairs)}
