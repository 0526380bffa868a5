"""Runs as Slurm array tasks: sbatch through submitit, one sacct call per refresh."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from paddle_hpc.backend import RunStatus, Say
from paddle_hpc.backend.charges import run_charge, sharing
from paddle_hpc.backend.run_status import ended_in_submission, run_status
from paddle_hpc.core import runstate
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, RunEntry, update
from paddle_hpc.core.schema import ResourcesConfig, SweepConfig
from paddle_hpc.slurm import SlurmClient
from paddle_hpc.slurm.charge import attempts
from paddle_hpc.slurm.limits import check_fits
from paddle_hpc.slurm.parse import parse_sacct, task_rows
from paddle_hpc.slurm.shared import sacct_text


def started_runs(sweep: SweepDir) -> frozenset[str]:
    """The runs with a folder, in one listing: a run's node makes it when the run starts,
    so the state files of the others need not be looked for (10,000 of them, pending)."""
    try:
        with os.scandir(sweep.runs) as entries:
            return frozenset(e.name for e in entries)
    except OSError:
        return frozenset()


class SlurmBackend:
    name = "slurm"
    runs_here = False
    accounted = True

    def __init__(self, client: SlurmClient | None = None) -> None:
        self.client = client or SlurmClient()

    def check(self, manifest: Manifest) -> None:
        """Each resource shape against the partitions it names: one sinfo call."""
        partitions = self.client.partitions()
        for shape in manifest.shapes:
            check_fits(ResourcesConfig(**shape["resources"]), partitions)

    def submit(
        self, sweep: SweepDir, config: SweepConfig, run_ids: Sequence[str] | None, say: Say
    ) -> Manifest:
        from paddle_hpc.backend import feed
        from paddle_hpc.backend.arrays import submit

        submitted, new = submit(sweep.path, self.client, config, run_ids, feed.Fitter(self.client))
        if new:
            runs = sum(len(a.run_ids) for a in new)
            jobs = ", ".join(str(a.job_id) for a in new)
            say(f"submitted {runs} runs as array job(s) {jobs}")
        elif submitted.feed is None:
            say("nothing to submit: another command submitted these runs meanwhile")
        if submitted.feed is not None:
            pid = feed.start(sweep)
            say(
                f"{len(submitted.feed.run_ids)} run(s) wait for room in the queue "
                f"({', '.join(submitted.feed.limits)}): the sweep's feeder "
                + (f"(pid {pid}) " if pid else "")
                + f"submits them as earlier runs end; its log is {sweep.feed_log}"
            )
        return submitted

    def preview(
        self, sweep_dir: Path, manifest: Manifest, config: SweepConfig, new: Sequence[RunEntry]
    ) -> tuple[Manifest, str | None]:
        from paddle_hpc.backend import feed
        from paddle_hpc.backend.start import estimated

        said = feed.preview(manifest, new, config.trials_per_task, feed.Fitter(self.client))
        manifest, lines = estimated(sweep_dir, manifest, config, self.client)
        return manifest, said + "".join(f"\n# {line}" for line in lines)

    def states_of(
        self,
        sweeps: Sequence[tuple[SweepDir, Manifest]],
        *,
        run_files: bool = True,
        max_age: float = 0.0,
    ) -> list[list[RunStatus]]:
        jobs = sorted({r.job_id for _, m in sweeps for r in m.runs if r.job_id is not None})
        records = parse_sacct(sacct_text(self.client, jobs, max_age))
        rows, allocations = task_rows(records), attempts(records)
        found = []
        for sweep, manifest in sweeps:
            waiting = frozenset(manifest.feed.run_ids if manifest.feed else ())
            started = started_runs(sweep) if run_files else frozenset()
            shares = sharing(manifest.runs)
            found.append(
                [
                    run_status(
                        run,
                        rows.get((run.job_id, run.array_task or 0)) if run.job_id else None,
                        runstate.read(sweep.run(run.run_id).state)
                        if run.run_id in started
                        else None,
                        runs_here=False,
                        waiting=run.run_id in waiting,
                    )._replace(charge=run_charge(run, allocations, shares) if allocations else None)
                    for run in manifest.runs
                ]
            )
        return found

    def cancel(
        self,
        sweep: SweepDir,
        manifest: Manifest,
        run_ids: Sequence[str],
        pruned: str | None = None,
    ) -> None:
        """scancel of the runs' tasks. A packed trial's state file says CANCELLED first,
        and its task is cancelled only when no trial of it is left to run: the task skips
        a trial not started, and the trial's watchdog stops a running one. A pruned run's
        state file says PRUNED first, packed or not."""
        wanted = set(run_ids)
        if manifest.feed is not None:  # and the runs the feeder submitted meanwhile
            manifest = update(sweep.path, lambda fresh: fresh.without(wanted))
        runs = [r for r in manifest.runs if r.job_id is not None]
        for run in runs:
            if run.run_id in wanted and (run.packed or pruned is not None):
                word = runstate.CANCELLED if pruned is None else runstate.PRUNED
                runstate.stop(sweep.run(run.run_id).state, run.attempt, run.job, word, pruned)
        busy = {
            r.job
            for r in runs
            if r.packed
            and r.run_id not in wanted
            and not ended_in_submission(sweep.run(r.run_id).state, r)
        }
        self.client.cancel(r.job for r in runs if r.run_id in wanted and r.job not in busy)

    def node_output(self, sweep: SweepDir, run: RunEntry, node: int, err: bool) -> Path | None:
        if run.job_id is None:
            return None
        return sweep.slurm_log(run.job_id, run.array_task or 0, node, err)
