"""Slurm accounting for a sweep: one sacct call, saved in the sweep directory.

`SWEEP_DIR/sacct.txt` holds sacct's own output, so a sweep copied to a machine
without Slurm still has its accounting, parsed by the same parser. Once every run's
saved state is final, sacct is not asked again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from paddle_hpc.core import runstate
from paddle_hpc.core.errors import SlurmError
from paddle_hpc.core.files import write_atomic
from paddle_hpc.core.layout import SACCT
from paddle_hpc.core.manifest import Manifest
from paddle_hpc.slurm import SacctRecord, SlurmClient, parse_sacct
from paddle_hpc.slurm.parse import task_rows
from paddle_hpc.slurm.shared import sacct_text

log = logging.getLogger(__name__)
SACCT_FILE = SACCT


def saved(sweep_dir: Path) -> list[SacctRecord]:
    path = sweep_dir / SACCT_FILE
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
    if not manifest.arrays or is_final(manifest, last):
        return last
    jobs = sorted({a.job_id for a in manifest.arrays})
    try:
        text = sacct_text(client, jobs, max_age)
    except SlurmError as exc:
        log.warning("sacct failed (%s); using the accounting saved in %s", exc, SACCT_FILE)
        return last
    write_atomic(sweep_dir / SACCT_FILE, text)
    return parse_sacct(text)
