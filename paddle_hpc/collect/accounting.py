"""Slurm accounting for a sweep: one sacct call, saved in the sweep directory.

`SWEEP_DIR/sacct.txt` holds sacct's own output for the sweep's allocations, so a
sweep copied to a machine without Slurm still has its accounting, parsed by the same
parser. Once every run's saved state is final, sacct is not asked again.

What the allocations used (CPU time, peak memory) is in their steps' rows, four times
as many: `sacct-steps.txt` holds them, asked for when allocations ended that it does
not cover, at most every STEPS_EVERY_S seconds, and once more when the sweep ends.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from paddle_hpc.core import runstate
from paddle_hpc.core.errors import SlurmError
from paddle_hpc.core.files import write_atomic
from paddle_hpc.core.layout import SACCT, SACCT_STEPS
from paddle_hpc.core.manifest import Manifest
from paddle_hpc.slurm import SacctRecord, SlurmClient, parse_sacct
from paddle_hpc.slurm.charge import Task, attempts, parse_usage
from paddle_hpc.slurm.parse import task_rows
from paddle_hpc.slurm.shared import sacct_text

log = logging.getLogger(__name__)
SACCT_FILE = SACCT
STEPS_FILE = SACCT_STEPS
STEPS_EVERY_S = 300.0


def saved(sweep_dir: Path, name: str = SACCT_FILE) -> list[SacctRecord]:
    path = sweep_dir / name
    try:
        return parse_sacct(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except ValueError as exc:
        log.warning("%s is not sacct output (%s); ignoring it", path, exc)
        return []


def is_final(manifest: Manifest, records: list[SacctRecord]) -> bool:
    rows = task_rows(records)
    return all(
        (r.job_id, r.array_task) in rows
        and rows[(r.job_id, r.array_task)].state in runstate.SLURM_ENDED
        for r in manifest.runs
        if r.job_id is not None and r.array_task is not None
    )


def refresh(
    sweep_dir: Path, manifest: Manifest, client: SlurmClient, max_age: float = 0.0
) -> list[SacctRecord]:
    """The sweep's accounting: from one sacct call (or an answer another watcher got, no
    older than max_age seconds: slurm/shared.py), saved, or else what was saved last."""
    last = saved(sweep_dir)
    if not manifest.arrays:
        return last
    jobs = sorted({a.job_id for a in manifest.arrays})
    final = is_final(manifest, last)
    records = last
    if not final:
        try:
            text = sacct_text(client, jobs, max_age)
        except SlurmError as exc:
            log.warning("sacct failed (%s); using the accounting saved in %s", exc, SACCT_FILE)
            return last
        write_atomic(sweep_dir / SACCT_FILE, text)
        records = parse_sacct(text)
        final = is_final(manifest, records)
    refresh_steps(sweep_dir, jobs, records, final, client)
    return records


def allocations(sweep_dir: Path, records: list[SacctRecord]) -> dict[Task, list[SacctRecord]]:
    """Each task's allocations (slurm/charge.py), with what sacct-steps.txt says they used."""
    try:
        used = parse_usage((sweep_dir / STEPS_FILE).read_text(encoding="utf-8"))
    except OSError:
        used = {}
    return attempts(records, used)


def refresh_steps(
    sweep_dir: Path, jobs: list[int], records: list[SacctRecord], final: bool, client: SlurmClient
) -> None:
    """Asks for the allocations' steps when some ended that sacct-steps.txt does not
    cover: every STEPS_EVERY_S seconds at most, or once when the sweep's tasks ended."""
    found = allocations(sweep_dir, records)
    if not any(
        r.end is not None and r.total_cpu_s is None for rows in found.values() for r in rows
    ):
        return
    path = sweep_dir / STEPS_FILE
    try:
        written = path.stat().st_mtime
    except FileNotFoundError:
        written = 0.0
    ended_since = final and written < (sweep_dir / SACCT_FILE).stat().st_mtime
    if time.time() - written < STEPS_EVERY_S and not ended_since:
        return
    try:
        write_atomic(path, client.sacct_text(jobs, steps=True))
    except SlurmError as exc:
        log.warning("sacct failed (%s); using the usage saved in %s", exc, STEPS_FILE)
