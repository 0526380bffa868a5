"""`python -m paddle_hpc.retry SWEEP_DIR [RUN ...] [--state FAILED,TIMEOUT,...]`

Resubmits the runs that ended in those states (default: every end state but COMPLETED
and CANCELLED), as one new array per resource shape. A retried run keeps its id and
directory; its earlier attempt's files move to `runs/<id>/attempts/<K>/` when the new
attempt starts, and the manifest keeps every submission. Runs still pending or running
are not submitted again. With sweep.retry_grow, a run that ended OUT_OF_MEMORY or
TIMEOUT asks for more memory or time. `--then STEP` submits a step (sweep.then) again
for the runs that completed and whose step did not.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from paddle_hpc.backend import RunStatus, backend_for, states
from paddle_hpc.backend.arrays import resubmit_steps
from paddle_hpc.backend.grow import grow_runs
from paddle_hpc.backend.naming import described, parse_states, pick_runs
from paddle_hpc.core import runstate
from paddle_hpc.core.command import console, run
from paddle_hpc.core.errors import PaddleHpcError
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, RunEntry, load, step_state, update
from paddle_hpc.core.schema import RetryGrowConfig, RunConfig, SweepConfig
from paddle_hpc.slurm import SlurmClient

DEFAULT = runstate.SLURM_ENDED - {runstate.COMPLETED, runstate.CANCELLED}


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="paddle-hpc retry", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("runs", nargs="*", help="run ids, unique prefixes or JOB_TASK")
    parser.add_argument(
        "--state", help=f"end states to retry (default: {','.join(sorted(DEFAULT))})"
    )
    parser.add_argument(
        "--then", metavar="STEP", help="submit the step STEP again where it did not complete"
    )
    # RUN:JOB:ATTEMPT:STATE, from the node of a task that ended so (node/ending.py)
    parser.add_argument("--ended", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    wanted = parse_states(args.state, runstate.SLURM_ENDED) if args.state else DEFAULT
    sweep = SweepDir(args.sweep_dir)
    if args.ended:
        return retry_ended(sweep, *args.ended.split(":"))
    manifest = load(sweep.path)
    named = pick_runs(manifest, args.runs) if args.runs else list(manifest.runs)
    backend = backend_for(manifest.executor)
    now = {s.run_id: s for s in states(backend, sweep, manifest)}
    if args.then:
        return retry_step(sweep, manifest, named, now, args.then)
    picked = [r for r in named if now[r.run_id].state in wanted]
    if not picked:
        shown = ", ".join(f"{r.run_id} {now[r.run_id].state}" for r in named[:5])
        raise PaddleHpcError(
            f"nothing to retry: no run of {sweep.path} ended in {','.join(sorted(wanted))}"
            + (f" ({shown}{' ...' if len(named) > 5 else ''})" if args.runs else "")
            + "."
        )
    sweep_config = read_sweep_config(sweep)  # first: a run marked for retry must be submitted
    seen = {r.run_id: r.attempt for r in picked}  # each run's submission as it was seen
    ended = {r.run_id: now[r.run_id].state for r in picked}
    used = default_memory(manifest, picked, ended, sweep_config.retry_grow)
    marked: set[str] = set()
    grew: dict[str, str] = {}

    def mark(fresh: Manifest) -> Manifest:  # what another command retried meanwhile is left
        ended = {
            r.run_id: (now[r.run_id].state, now[r.run_id].attempt)
            for r in fresh.runs
            if seen.get(r.run_id) == r.attempt
        }
        marked.update(ended)
        states = {run_id: state for run_id, (state, _) in ended.items()}
        grown, said = grow_runs(fresh.for_retry(ended), states, sweep_config.retry_grow, used)
        if said:
            backend.check(grown)  # a node must fit what the runs ask for now
        grew.update(said)
        return grown

    update(sweep.path, mark)
    retried = [r for r in picked if r.run_id in marked]
    out = console()
    if not retried:
        out.print("nothing to retry: another command retried these runs meanwhile")
        return 0
    out.print(f"retrying {len(retried)} run(s): {described(retried)}")
    for run_id, what in grew.items():
        out.print(f"{run_id} asks for more: {what} (sweep.retry_grow)", markup=False)
    backend.submit(sweep, sweep_config, [r.run_id for r in retried], out.print)
    return 0


def retry_step(
    sweep: SweepDir,
    manifest: Manifest,
    named: Sequence[RunEntry],
    now: Mapping[str, RunStatus],
    step: str,
) -> int:
    """Submits the step again for the runs that completed and whose step ended other
    than COMPLETED; Slurm only."""
    config = read_sweep_config(sweep)
    if step not in config.then:
        raise PaddleHpcError(
            f"{sweep.path} has no step {step!r}; its steps (sweep.then): "
            f"{', '.join(config.then) or 'none'}."
        )
    ended = runstate.SLURM_ENDED - {runstate.COMPLETED}
    picked = [
        entry.run_id
        for entry in named
        if now[entry.run_id].state == runstate.COMPLETED
        and step_state(sweep, manifest, entry.run_id, step, runstate.COMPLETED) in ended
    ]
    if not picked:
        raise PaddleHpcError(
            f"nothing to retry: no completed run of {sweep.path} has its step {step} ended "
            "other than COMPLETED."
        )
    if not backend_for(manifest.executor).accounted:
        raise PaddleHpcError(f"{sweep.path} ran here without Slurm: run its sweep again.")
    arrays = resubmit_steps(sweep.path, SlurmClient(), config, step, picked)
    jobs = ", ".join(str(a.job_id) for a in arrays)
    console().print(f"retrying step {step} of {len(picked)} run(s) as array job(s) {jobs}")
    return 0


def read_sweep_config(sweep: SweepDir) -> SweepConfig:
    try:
        return RunConfig.load(sweep.config).sweep
    except (OSError, ValueError) as exc:
        raise PaddleHpcError(f"{sweep.config}: cannot read the sweep's config ({exc}).") from exc


def retry_ended(sweep: SweepDir, run_id: str, job: str, attempt: str, state: str) -> int:
    """The retry a node asks for when its task ended `state` and sweep.retry_grow grows
    it: while the task still runs, so by what the node says, not by Slurm. A run on
    another task by now (retried meanwhile) is left as it is."""
    config = read_sweep_config(sweep)
    manifest = load(sweep.path)
    backend = backend_for(manifest.executor)
    mine = [r for r in manifest.runs if r.run_id == run_id and r.job == job]
    used = default_memory(manifest, mine, {run_id: state}, config.retry_grow)
    grew: dict[str, str] = {}

    def mark(fresh: Manifest) -> Manifest:
        if not any(r.run_id == run_id and r.job == job for r in fresh.runs):
            return fresh
        again = fresh.for_retry({run_id: (state, int(attempt))})
        grown, said = grow_runs(again, {run_id: state}, config.retry_grow, used)
        backend.check(grown)
        grew.update(said or {run_id: "as before"})
        return grown

    update(sweep.path, mark)
    out = console()
    if not grew:
        out.print(f"{run_id} was retried meanwhile: nothing to submit")
        return 0
    out.print(f"{run_id} ended {state}, asks for more: {grew[run_id]}", markup=False)
    backend.submit(sweep, config, [run_id], out.print)
    return 0


def default_memory(
    manifest: Manifest,
    runs: Sequence[RunEntry],
    ended: Mapping[str, str],
    grow: RetryGrowConfig,
) -> dict[str, float]:
    """The memory per node Slurm gave each run that ran out of it without resources.mem
    (the partition's default), by its last allocation's ReqMem: one sacct call, if any."""
    if grow.mem <= 1:
        return {}
    wanted = {
        r.job: r.run_id
        for r in runs
        if ended.get(r.run_id) == runstate.OUT_OF_MEMORY
        and r.job
        and not manifest.shapes[r.shape]["resources"].get("mem")
    }
    if not wanted:
        return {}
    return {
        wanted[f"{row.ref.job}_{row.ref.task}"]: row.req_mem_mb
        for row in SlurmClient().sacct(list(wanted))
        if row.ref.step is None and row.req_mem_mb is not None
    }


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
