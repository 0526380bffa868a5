"""Paddle worker logs (`workerlog.N`): training and evaluation lines -> metrics, failures
-> errors.

Pure: each function takes text and returns values. The suites' own line formats are in
`suites`; a user's own format is a regex with named groups: `step` is the step, every
other group a metric.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from paddle_hpc.metrics import whole_step
from paddle_hpc.parse.suites import SuiteLog

_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class MetricRow:
    line: int  # 1-based
    step: int | None
    name: str
    value: float


def user_metrics(pattern: re.Pattern[str], text: str) -> tuple[int | None, list[tuple[str, float]]]:
    """A user's regex: the named group `step`, and every other named group as a metric."""
    match = pattern.search(text)
    if match is None:
        return None, []
    step: int | None = None
    found = []
    for name, value in match.groupdict().items():
        if value is None:
            continue
        if name == "step":
            try:
                step = whole_step(value)
            except ValueError:
                return None, []  # not a step this line: not the pattern's line
            continue
        try:
            found.append((name, float(value)))
        except ValueError:
            continue
    return step, found


def log_metrics(lines: Iterable[str], patterns: Sequence[re.Pattern[str]] = ()) -> list[MetricRow]:
    """Every metric a worker log's lines carry, in order."""
    rows: list[MetricRow] = []
    suite = SuiteLog()
    for number, text in enumerate(lines, start=1):
        if "\x1b" in text:  # PaddleNLP's logger colours its lines, in a file too
            text = _COLOUR.sub("", text)
        parsed = suite.read(text)
        if parsed is None:
            for pattern in patterns:
                step, found = user_metrics(pattern, text)
                if found:
                    parsed = step, found
                    break
        if parsed is not None:
            step, found = parsed
            rows.extend(MetricRow(number, step, name, value) for name, value in found)
    return rows


@dataclass(frozen=True)
class Failure:
    line: int  # 1-based, of the line naming the error
    kind: str  # the exception type, or OOM
    message: str
    traceback: str  # the last lines before it, at most TAIL


TAIL = 12
_EXCEPTION = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)?)(?:: (.*))?$"
)
_PADDLE_ERROR = re.compile(r"^\(?([A-Z]\w*Error)\)?:? ?(.*)$")
_OOM = re.compile(r"out of memory|ResourceExhausted|Cannot allocate", re.IGNORECASE)


def failures(lines: Sequence[str]) -> list[Failure]:
    """Python tracebacks, and Paddle's C++ 'Error Message Summary' blocks, in a log."""
    found = []
    index = 0
    while index < len(lines):
        text = lines[index].rstrip("\n")
        if text.startswith("Traceback (most recent call last):"):
            end = index + 1
            while end < len(lines) and (lines[end][:1] in (" ", "\t") or not lines[end].strip()):
                end += 1
            if end < len(lines):
                found.append(_failure(lines, index, end))
            index = end + 1
            continue
        if text.strip() == "Error Message Summary:":
            end = index + 1
            while end < len(lines) and set(lines[end].strip()) <= {"-"}:
                end += 1
            if end < len(lines) and (match := _PADDLE_ERROR.match(lines[end].strip())):
                kind, message = match.groups()
                tail = "".join(lines[max(0, end - TAIL) : end + 1])
                found.append(Failure(end + 1, oom_or(kind, message), message, tail))
            index = end + 1
            continue
        index += 1
    return found


def _failure(lines: Sequence[str], start: int, end: int) -> Failure:
    text = lines[end].rstrip("\n")
    match = _EXCEPTION.match(text)
    kind, message = (match[1], match[2] or "") if match else ("Error", text)
    tail = "".join(lines[max(start, end - TAIL) : end + 1])
    return Failure(end + 1, oom_or(kind, message), message, tail)


def oom_or(kind: str, message: str) -> str:
    return "OOM" if _OOM.search(message) or kind == "ResourceExhaustedError" else kind
