"""How the verbs show runs' states: counts first, then the runs that need attention."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from paddle_hpc.backend import WATCH_MAX_AGE_S, Backend, RunStatus, states
from paddle_hpc.backend.charges import cost_line
from paddle_hpc.core import runstate
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, load
from paddle_hpc.slurm.pending import Pending, never_clears

SHOWN = 20  # rows shown without --all
_COLOURS = {runstate.COMPLETED: "green", runstate.RUNNING: "cyan", runstate.PENDING: "yellow"}


def is_done(statuses: Sequence[RunStatus]) -> bool:
    return not any(s.active for s in statuses)


def needs_attention(status: RunStatus) -> bool:
    return status.ended and status.state not in (runstate.COMPLETED, runstate.PRUNED)


def state_counts(statuses: Sequence[RunStatus]) -> str:
    """'COMPLETED 3  FAILED 1': runs per state, states in alphabetical order."""
    counts = Counter(s.state for s in statuses)
    return "  ".join(f"{state} {n}" for state, n in sorted(counts.items()))


def as_json(statuses: Sequence[RunStatus]) -> dict[str, Any]:
    """Runs per state, and each run's status, as `--json` prints them."""
    return {
        "counts": dict(sorted(Counter(s.state for s in statuses).items())),
        "runs": [
            s._asdict() | {"charge": asdict(s.charge) if s.charge else None} for s in statuses
        ],
    }


def _elapsed(seconds: int | None) -> str:
    if seconds is None:
        return ""
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def attempt_text(status: RunStatus) -> str:
    """'3 after PREEMPTED, TIMEOUT': the attempt, and how the ones before it ended."""
    if not status.history:
        return str(status.attempt)
    return f"{status.attempt} after {', '.join(status.history)}"


def rows_table(manifest: Manifest, statuses: Sequence[RunStatus], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("run", "job", *manifest.axes, "state", "attempt", "elapsed", "nodes", "reason"):
        table.add_column(column)
    for s in statuses:
        table.add_row(
            s.run_id,
            s.job,
            *(s.swept.get(axis, "") for axis in manifest.axes),
            Text(s.state, style=_COLOURS.get(s.state, "red")),
            attempt_text(s),
            _elapsed(s.elapsed_s) if s.state != runstate.PENDING else "",
            ",".join(s.nodes),
            s.reason,
        )
    return table


def render(
    manifest: Manifest,
    statuses: Sequence[RunStatus],
    *,
    every: bool = False,
    only: Collection[str] = (),
    limit: int = SHOWN,
) -> list[Table | str]:
    """The summary line, then a table: the runs needing attention, or every run (`every`),
    or the runs in the states `only`; at most `limit` rows unless `every`."""
    out: list[Table | str] = [
        f"sweep {manifest.name}: {len(statuses)} runs  ({state_counts(statuses)})"
    ]
    charged = cost_line([s.charge for s in statuses if s.charge is not None])
    if charged:
        out.append(charged)
    if every:
        picked, what = list(statuses), "runs"
    elif only:
        picked, what = [s for s in statuses if s.state in only], f"runs {','.join(sorted(only))}"
    else:
        picked, what = [s for s in statuses if needs_attention(s)], "runs that need attention"
    if not picked:
        return out
    shown = picked if every else picked[:limit]
    out.append(rows_table(manifest, shown, f"{what}: {len(picked)}"))
    if len(shown) < len(picked):
        out.append(f"... and {len(picked) - len(shown)} more: --all shows every run")
    return out


def watch(
    sweep: SweepDir,
    manifest: Manifest,
    backend: Backend,
    console: Console,
    sleep: Callable[[float], None] = time.sleep,
    max_interval_s: float = 30.0,
) -> list[RunStatus]:
    """Polls until every run has ended (or waits for a feeder that is not running); the
    interval grows from 2 s to max_interval_s."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from paddle_hpc.backend import feed

    interval = 2.0
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("runs ended", total=len(manifest.runs))
        while True:
            if manifest.feed is not None:  # its feeder submits more meanwhile
                manifest = load(sweep.path)
            found = states(backend, sweep, manifest, WATCH_MAX_AGE_S)
            ended = sum(1 for s in found if s.ended)
            progress.update(bar, completed=ended, description=state_counts(found))
            if is_done(found):
                return found
            stuck = all(s.state == runstate.WAITING for s in found if s.active)
            if stuck and not feed.running(sweep):
                return found
            sleep(interval)
            interval = min(interval * 1.5, max_interval_s)


def exit_code(statuses: Sequence[RunStatus]) -> int:
    """1 once every run has ended and one of them did not complete."""
    return 1 if is_done(statuses) and any(needs_attention(s) for s in statuses) else 0


def pending_lines(statuses: Sequence[RunStatus], queue: Mapping[str, Pending]) -> list[str]:
    """Why the pending runs wait and when Slurm expects them to start, from squeue
    (`queue`: job '12_3' -> its reason and start); then each reason that never clears
    by itself, with its runs and what to change."""
    waiting = [
        (s, queue[s.job]) for s in statuses if s.state == runstate.PENDING and s.job in queue
    ]
    if not waiting:
        return []
    reasons = Counter(p.reason for _, p in waiting)
    starts = sorted(p.start for _, p in waiting if p.start is not None)
    line = f"pending: {len(waiting)} run(s), waiting for " + ", ".join(
        f"{reason} {n}" for reason, n in reasons.most_common()
    )
    if starts:
        line += f"; Slurm expects the first to start at {starts[0]:%Y-%m-%d %H:%M}"
        if len(starts) > 1 and starts[-1] != starts[0]:
            line += f", the last planned at {starts[-1]:%Y-%m-%d %H:%M}"
    lines = [line]
    for reason in reasons:
        why = never_clears(reason)
        if why is not None:
            runs = [s.run_id for s, p in waiting if p.reason == reason]
            shown = ", ".join(runs[:5]) + (f" and {len(runs) - 5} more" if len(runs) > 5 else "")
            lines.append(
                f"{len(runs)} run(s) wait for {reason}, which does not clear by itself: {why} "
                f"({shown})"
            )
    return lines
