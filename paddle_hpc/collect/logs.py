"""Paddle worker logs (`workerlog.N`): training-log lines -> metrics, failures -> errors.

Pure: each function takes text and returns values. The line formats are those the
Paddle suites print, checked against their source:

- PaddleOCR `tools/program.py`:
  'epoch: [{}/{}], global_step: {}, {logs}, avg_reader_cost: {:.5f} s, ...' where
  logs is `TrainingStats.log()`, 'name: value' pairs joined by ', '.
- PaddleDetection `ppdet/engine/callbacks.py` (LogPrinter):
  'Epoch: [{}] [{:Nd}/{}] learning_rate: {lr:.6f} {meters} eta: {eta} batch_cost: ...'
  with meters 'name: value' pairs joined by ' '. The step is epoch * steps + batch.
- PaddleNLP's training examples:
  'global step %d, epoch: %d, batch: %d, loss: %.5f, ..., speed: %.2f step/s'.

Each becomes rows (step, name, value), `epoch` included; non-numeric fields (`eta`)
are left out. A user's own format is a regex with named groups: `step` is the step,
every other group a metric.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from paddle_hpc.metrics import whole_step

NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
NOT_METRICS = frozenset({"eta"})

# A 'name: value' pair, the value optionally followed by a unit ('0.14 s', '7.5 samples/s').
_PAIR = re.compile(rf"([A-Za-z_][\w ]*?): ({NUMBER})(?: [A-Za-z/]+)?(?=,|\s|$)", re.IGNORECASE)
_OCR = re.compile(r"epoch: \[(\d+)/\d+\], (?:global_step: (\d+), )?(.*)")
_DET = re.compile(r"Epoch: \[(\d+)\] \[\s*(\d+)/(\d+)\] (.*)")
_NLP = re.compile(r"global step (\d+), epoch: (\d+), batch: \d+, (.*)")


@dataclass(frozen=True)
class MetricRow:
    line: int  # 1-based
    step: int | None
    name: str
    value: float


def pairs(text: str) -> Iterator[tuple[str, float]]:
    """'loss: 0.5, ips: 7.5 samples/s, eta: 1 day, 2:00:00' -> loss, ips (not eta)."""
    for name, value in _PAIR.findall(text):
        name = name.strip()
        if name not in NOT_METRICS:
            yield name, float(value)


def suite_metrics(text: str) -> tuple[int | None, list[tuple[str, float]]] | None:
    """The step and metrics of one PaddleOCR, PaddleDetection or PaddleNLP log line."""
    if match := _NLP.search(text):
        step, epoch, rest = match.groups()
        return int(step), [("epoch", float(epoch)), *pairs(rest)]
    if match := _DET.search(text):
        epoch, batch, steps, rest = match.groups()
        step = int(epoch) * int(steps) + int(batch)
        return step, [("epoch", float(epoch)), *pairs(rest)]
    if match := _OCR.search(text):
        epoch, step, rest = match.groups()
        return (int(step) if step else None), [("epoch", float(epoch)), *pairs(rest)]
    return None


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
    for number, text in enumerate(lines, start=1):
        parsed = suite_metrics(text)
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
