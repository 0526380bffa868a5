"""Runs as Slurm array tasks: sbatch through submitit, one sacct call per refresh."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from paddle_hpc.backend import NOT_SUBMITTED, RunStatus, Say
from paddle_hpc.core import packing, runstate
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, RunEntry
from paddle_hpc.core.schema import ResourcesConfig, SweepConfig
from paddle_hpc.slurm import SacctRecord, SlurmClient
from paddle_hpc.slurm.limits import check_fits


def task_rows(records: Iterable[SacctRecord]) -> dict[tuple[int, int], SacctRecord]:
    """(array job id, task) -> its allocation row; a collapsed row of pending tasks
    ('12_[4-9%2]') stands for each of them."""
    rows: dict[tuple[int, int], SacctRecord] = {}
    for row in records:
        if row.ref.step is None and row.ref.tasks is not None:
            for task in row.ref.tasks:
                rows[(row.ref.job, task)] = row
    return rows


def run_status(
    run: RunEntry, record: SacctRecord | None, state: runstate.RunState | None
) -> RunStatus:
    """A run's status from its task's sacct row and its own state file. Pure.

    A task sacct does not list yet (just submitted) is PENDING; a run never submitted
    is NOT_SUBMITTED.
    """
    attempt = run.attempt
    reason = ""
    history: tuple[str, ...] = ()
    if state is not None and state.attempt >= run.attempt:
        attempt, reason, history = state.attempt, state.reason or "", state.history
    if run.job_id is None:
        return RunStatus(run.run_id, run.swept, NOT_SUBMITTED, None, (), "", run.attempt)
    if runstate.pruned(state, run.attempt) and (record is None or record.state != "RUNNING"):
        nodes = record.nodes if record is not None else ()
        elapsed = record.elapsed_s if record is not None and not run.packed else None
        return RunStatus(
            run.run_id,
            run.swept,
            runstate.PRUNED,
            elapsed,
            nodes,
            run.job,
            attempt,
            reason,
            history,
        )
    if run.packed:
        shown, reason = packing.trial_state(record.state if record else None, state, run.attempt)
        nodes = record.nodes if record is not None and shown != "PENDING" else ()
        elapsed = (
            packing.trial_elapsed(state)
            if state is not None and state.attempt >= run.attempt
            else None
        )
        return RunStatus(
            run.run_id, run.swept, shown, elapsed, nodes, run.job, attempt, reason, history
        )
    if record is None:
        return RunStatus(
            run.run_id, run.swept, "PENDING", None, (), run.job, attempt, reason, history
        )
    return RunStatus(
        run.run_id,
        run.swept,
        record.state,
        record.elapsed_s,
        record.nodes,
        run.job,
        attempt,
        reason,
        history,
    )


def mark_cancelled(path: Path, run: RunEntry) -> None:
    """Says CANCELLED in a packed trial's state file, for the attempt it is at."""
    state = runstate.read(path)
    if state is None or state.attempt < run.attempt:
        runstate.write(
            path, runstate.RunState(runstate.CANCELLED, attempt=run.attempt, job=run.job)
        )
    elif state.state == runstate.RUNNING or state.retrying:
        runstate.write(path, replace(state, state=runstate.CANCELLED, time="", retrying=False))


def trial_ended(path: Path, run: RunEntry) -> bool:
    """Whether a packed trial has ended in its current submission."""
    state = runstate.read(path)
    return (
        state is not None
        and state.attempt >= run.attempt
        and state.state != runstate.RUNNING
        and not state.retrying
    )


class SlurmBackend:
    name = "slurm"
    runs_here = False

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
        from paddle_hpc.backend.arrays import submit

        submitted, new = submit(sweep.path, self.client, config, run_ids)
        if not new:
            say("nothing to submit: another command submitted these runs meanwhile")
            return submitted
        runs = sum(len(a.run_ids) for a in new)
        say(f"submitted {runs} runs as array job(s) {', '.join(str(a.job_id) for a in new)}")
        return submitted

    def states_of(
        self, sweeps: Sequence[tuple[SweepDir, Manifest]], *, run_files: bool = True
    ) -> list[list[RunStatus]]:
        jobs = sorted({r.job_id for _, m in sweeps for r in m.runs if r.job_id is not None})
        rows = task_rows(self.client.sacct(jobs))
        found = []
        for sweep, manifest in sweeps:
            found.append(
                [
                    run_status(
                        run,
                        rows.get((run.job_id, run.array_task or 0)) if run.job_id else None,
                        runstate.read(sweep.run(run.run_id).state) if run_files else None,
                    )
                    for run in manifest.runs
                ]
            )
        return found

    def cancel(self, sweep: SweepDir, manifest: Manifest, run_ids: Sequence[str]) -> None:
        """scancel of the runs' tasks. A packed trial's state file says CANCELLED first,
        and its task is cancelled only when no trial of it is left to run: the task skips
        a trial not started, and the trial's watchdog stops a running one."""
        wanted = set(run_ids)
        runs = [r for r in manifest.runs if r.job_id is not None]
        for run in runs:
            if run.run_id in wanted and run.packed:
                mark_cancelled(sweep.run(run.run_id).state, run)
        busy = {
            r.job
            for r in runs
            if r.packed and r.run_id not in wanted and not trial_ended(sweep.run(r.run_id).state, r)
        }
        self.client.cancel(r.job for r in runs if r.run_id in wanted and r.job not in busy)

    def node_output(self, sweep: SweepDir, run: RunEntry, node: int, err: bool) -> Path | None:
        if run.job_id is None:
            return None
        return sweep.slurm_log(run.job_id, run.array_task or 0, node, err)
