"""`python -m paddle_hpc.search SWEEP_DIR`: the driver of a search (`search.n_trials`).

`sweep` with `search.n_trials=N` checks the search and starts this driver detached
(with `--wait`, in the foreground). The driver asks Optuna for `search.batch_size`
trials, plans them as points of the sweep (each run's overrides are its trial's values
and `search.trial=<number>`), submits them as one array per resource shape, and
watches them: every `search.poll` seconds it collects the sweep (the same tables a
user reads), reports each running trial's new values of the pruned-on metric to
Optuna, and cancels the runs the pruner prunes (their state becomes PRUNED). Each
ended run is told to the study: its objective (a `final.*` column of the runs table),
PRUNED, or FAIL. Then the next batch, until the study has `search.n_trials` trials.

The study lives in `search/study.journal`, so the search outlives the driver: running
the same command again (with a larger n_trials for more trials) starts a driver that
takes up the running trials where the last one left them. One driver at a time holds
`search/driver.lock`; the sweep command reads `search/request.json` at every batch,
so a running driver sees a new n_trials.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf
from rich.console import Console

from paddle_hpc.backend import WATCH_MAX_AGE_S, Backend, backend_for, states
from paddle_hpc.core import compat, runstate
from paddle_hpc.core.command import console as make_console
from paddle_hpc.core.errors import ConfigError, PaddleHpcError
from paddle_hpc.core.files import held, holding, write_json_atomic
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.manifest import Manifest, load
from paddle_hpc.core.schema import SearchConfig
from paddle_hpc.plan.build import Plan, build_manifest, explain, make_plan
from paddle_hpc.plan.config import compose_base, config_groups
from paddle_hpc.plan.grid import parse_override
from paddle_hpc.search import space

if TYPE_CHECKING:
    import optuna

REQUEST, LOCK, LOG = "request.json", "driver.lock", "driver.log"


@dataclass(frozen=True)
class Request:
    """What the sweep command asked for; the driver plans every batch from it."""

    config_dir: str
    config_name: str
    overrides: list[str]
    cwd: str
    command: list[str]
    allow_config_change: bool = False


@dataclass(frozen=True)
class Space:
    config: SearchConfig
    space: Mapping[str, Any]  # key -> Optuna distribution
    fixed: list[str]  # the overrides every trial shares


def search_space(config_dir: Path, config_name: str, overrides: Sequence[str]) -> Space:
    """The search's settings and space: sweep.grid's entries, search.params and the
    command line's sweeps, in that order (a key given again takes the last)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from paddle_hpc.plan.points import apply_overrides
    from paddle_hpc.search import study

    parsed = [parse_override(text) for text in overrides]
    plain = [o for o in parsed if not o.is_sweep_override()]
    groups = config_groups(config_dir)
    chosen = tuple(o.input_line or "" for o in plain if o.key_or_group in groups)
    first = compose_base(config_dir, config_name, chosen)
    try:
        cfg = apply_overrides(first.config, [o for o in plain if o.key_or_group not in groups])
        values = OmegaConf.to_container(cfg.search, resolve=True, enum_to_str=True)
        grid = OmegaConf.to_container(cfg.sweep.grid, resolve=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(explain(exc)) from exc
    assert isinstance(values, dict) and isinstance(grid, dict)
    config = study.search_config({str(k): v for k, v in values.items()})
    study.check(config)
    texts = [
        *space.grid_texts({str(k): v for k, v in grid.items()}),
        *(f"{key}={spec}" for key, spec in config.params.items()),
        *(o.input_line or "" for o in parsed if o.is_sweep_override()),
    ]
    found, fixed = space.split(texts)
    if not found:
        raise ConfigError(
            "search.n_trials is set but nothing is searched: give search.params "
            "(key: 'interval(0.001, 0.1)') or sweep a key, e.g. 'optim.lr=interval(1e-4,0.1)'."
        )
    return Space(config, found, [*(o.input_line or "" for o in plain), *fixed])


def plan_trials(
    request: Request, found: Space, trials: Sequence[tuple[int, Mapping[str, Any]]]
) -> Plan:
    """The checked plan of these trials (number, params) as runs of the sweep."""
    rows = [
        (number, [*(space.override(k, params[k]) for k in found.space), f"search.trial={number}"])
        for number, params in trials
    ]
    return make_plan(
        Path(request.config_dir),
        request.config_name,
        found.fixed,
        Path(request.cwd),
        trials=rows,
    )


def start(request: Request, wait: bool, dry_run: bool, console: Console) -> int:
    """sweep's part of a search: check it (two points at the space's corners are planned
    in full), then run the driver here (wait) or detached."""
    found = search_space(Path(request.config_dir), request.config_name, request.overrides)
    probe = plan_trials(request, found, list(enumerate(space.probes(found.space))))
    manifest = build_manifest(probe, request.command)
    backend = backend_for(manifest.executor)
    backend.check(manifest)
    sweep = SweepDir(probe.sweep_dir)
    described = ", ".join(f"{k}: {d}" for k, d in found.space.items())
    from paddle_hpc.search import study

    count, batches = study.in_flight(found.config)
    console.print(
        f"search of {found.config.n_trials} trials, "
        + (f"in batches of {count}" if batches else f"{count} in flight")
        + f", {found.config.direction.value} {found.config.objective}; space {described}"
    )
    if dry_run:
        console.print(f"# dry run: sweep directory {sweep.path} (not written)")
        return 0
    sweep.search.mkdir(parents=True, exist_ok=True)
    write_json_atomic(sweep.search / REQUEST, asdict(request))
    if wait:
        return drive(sweep, console)
    if held(sweep.search / LOCK):
        console.print(
            f"its driver runs already; it reads search.n_trials={found.config.n_trials} "
            "when its batch ends"
        )
        return 0
    with (sweep.search / LOG).open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own module, an argv list
            [sys.executable, "-m", "paddle_hpc.search", str(sweep.path)],
            cwd=request.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the login shell's hangup
        )
    console.print(f"driver: pid {process.pid}, log {sweep.search / LOG}")
    console.print(f"sweep directory: {sweep.path}")
    console.print(f"status: python -m paddle_hpc.status {sweep.path}")
    return 0


def read_request(sweep: SweepDir) -> Request:
    path = sweep.search / REQUEST
    try:
        return Request(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise PaddleHpcError(
            f"{path}: {exc}. Start the search with `python -m paddle_hpc.sweep` and "
            "search.n_trials set."
        ) from exc


@dataclass
class Active:
    """A trial being run: its Optuna handle, its run, what was reported and pruned."""

    trial: optuna.trial.Trial
    run_id: str
    last_step: float = float("-inf")
    last_value: float | None = None  # reported at last_step
    pruned: bool = False  # its run was cancelled as PRUNED


def drive(sweep: SweepDir, console: Console) -> int:
    # each look collects the sweep: "N runs have written nothing yet" is no news here
    logging.getLogger("paddle_hpc.collect").setLevel(logging.ERROR)
    with holding(sweep.search / LOCK) as lock:
        if lock is None:
            console.print(f"another driver runs this search ({sweep.search / LOCK}); leaving it")
            return 0
        return Driver(sweep, console).run()


class Driver:
    def __init__(self, sweep: SweepDir, console: Console) -> None:
        from paddle_hpc.search import study

        self.sweep, self.console = sweep, console
        self.request = read_request(sweep)
        self.request_read = (sweep.search / REQUEST).stat().st_mtime_ns
        self.space = self.read_space()
        self.study = study.open_study(sweep.search, self.space.config)
        self.active: dict[int, Active] = {}
        self.running_here: threading.Thread | None = None  # the local backend's submit

    def read_space(self) -> Space:
        r = self.request
        return search_space(Path(r.config_dir), r.config_name, r.overrides)

    def say(self, text: str) -> None:
        self.console.print(f"[{time.strftime('%H:%M:%S')}] {text}")

    def run(self) -> int:
        import optuna

        self.take_up()
        while True:
            if free := self.free_slots():
                self.refresh()
                left = self.space.config.n_trials - len(self.study.trials)
                if left <= 0 and not self.active:
                    break
                if left > 0 and (free := self.free_slots()):
                    self.submit(min(free, left))
            ended = self.look()
            if self.active and not ended:
                time.sleep(self.space.config.poll)
        if self.running_here is not None:
            self.running_here.join()
        done = [t for t in self.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if done:
            best = self.study.best_trial
            self.say(
                f"search done: {len(self.study.trials)} trials; best is trial {best.number} "
                f"(run {best.user_attrs.get('run_id')}): {best.value} with {best.params}"
            )
        else:
            self.say(f"search done: {len(self.study.trials)} trials, none completed")
        return 0

    def free_slots(self) -> int:
        """How many trials to ask now (study.to_ask); none while the last ones run here,
        in the local backend's thread."""
        from paddle_hpc.search import study

        if self.running_here is not None and self.running_here.is_alive():
            return 0
        return study.to_ask(self.space.config, len(self.active))

    def refresh(self) -> None:
        """The sweep command's request again, when it was made again (a new n_trials)."""
        changed = (self.sweep.search / REQUEST).stat().st_mtime_ns
        if changed != self.request_read:
            self.request, self.request_read = read_request(self.sweep), changed
            self.space = self.read_space()

    def take_up(self) -> None:
        """The trials a driver before this one left running; those it asked but did not
        submit (it was killed in between) are submitted now."""
        import optuna

        manifest = load(self.sweep.path) if self.sweep.manifest.exists() else None
        runs = {r.run_id: r for r in manifest.runs} if manifest else {}
        waiting = set(manifest.feed.run_ids) if manifest and manifest.feed else set()
        running = self.study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
        unsubmitted = []
        for frozen in running:
            trial = compat.running_trial(self.study, frozen)
            run = runs.get(str(frozen.user_attrs.get("run_id")))
            if run is None or (run.job_id is None and run.run_id not in waiting):
                unsubmitted.append(trial)
                continue
            steps = frozen.intermediate_values
            last = max(steps, default=float("-inf"))
            value = steps[int(last)] if steps else None
            self.active[frozen.number] = Active(trial, run.run_id, last, value)
        if running:
            self.say(f"taking up {len(running)} running trial(s)")
        if unsubmitted:
            self.launch(unsubmitted)

    def submit(self, count: int) -> None:
        """Asks the study for `count` trials and submits them."""
        if self.running_here is not None:  # the batch before ran here: its thread ends too
            self.running_here.join()
        self.launch([self.study.ask(dict(self.space.space)) for _ in range(count)])

    def launch(self, trials: Sequence[optuna.trial.Trial]) -> None:
        """Plans the trials as runs of the sweep and submits them."""
        import optuna

        from paddle_hpc.backend.submission import submit_plan

        try:
            plan = plan_trials(self.request, self.space, [(t.number, t.params) for t in trials])
        except PaddleHpcError:
            for trial in trials:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        manifest = build_manifest(plan, self.request.command)
        objective = {"objective": self.space.config.objective}
        manifest = replace(manifest, extra={**manifest.extra, "search": objective})
        for trial, spec in zip(trials, plan.runs, strict=True):
            trial.set_user_attr("run_id", spec.run_id)
            self.active[trial.number] = Active(trial, spec.run_id)
        # runs here run in a thread: the driver watches them meanwhile
        done = submit_plan(plan, manifest, self.say, self.request.allow_config_change, True)
        self.running_here = done.running_here
        numbers = ("trial " if len(trials) == 1 else "trials ") + ", ".join(
            str(t.number) for t in trials
        )
        self.say(f"{numbers}: running here" if done.running_here else f"{numbers} submitted")

    def look(self) -> int:
        """One look at the active trials: report, prune, tell the ended ones; how many
        ended."""
        import optuna

        from paddle_hpc.collect import load as collect
        from paddle_hpc.search import study

        manifest = load(self.sweep.path)
        backend = backend_for(manifest.executor)
        # an answer another watcher got will do, if it is no older than the driver's poll
        age = min(WATCH_MAX_AGE_S, self.space.config.poll)
        found = {s.run_id: s for s in states(backend, self.sweep, manifest, age)}
        tables = collect(self.sweep.path, max_age=age)
        name = study.report_name(self.space.config)
        metrics = tables.metrics[tables.metrics["name"] == name]
        ended = 0
        for number, active in list(self.active.items()):
            status = found.get(active.run_id)
            if status is None:
                continue
            if not active.pruned:
                self.report(active, metrics[metrics["run_id"] == active.run_id])
                if not status.ended and active.trial.should_prune():
                    self.prune(backend, manifest, active)
                    continue
            if not status.ended:
                continue
            if status.state == runstate.PRUNED:
                self.study.tell(active.trial, state=optuna.trial.TrialState.PRUNED)
                self.say(f"trial {number} (run {active.run_id}): PRUNED, {status.reason}")
            else:
                value = None
                if (
                    status.state == runstate.COMPLETED
                    and self.space.config.objective in tables.runs
                ):
                    value = study.objective_value(
                        tables.runs.at[active.run_id, self.space.config.objective]
                    )
                if value is not None:
                    self.study.tell(active.trial, value)
                    self.say(f"trial {number} (run {active.run_id}): {value}")
                else:
                    why = (
                        status.state
                        if status.state != runstate.COMPLETED
                        else (f"no {self.space.config.objective} in the runs table")
                    )
                    active.trial.set_user_attr("reason", why)
                    self.study.tell(active.trial, state=optuna.trial.TrialState.FAIL)
                    self.say(f"trial {number} (run {active.run_id}): FAIL, {why}")
            del self.active[number]
            ended += 1
        return ended

    def report(self, active: Active, rows: Any) -> None:
        for step, value in zip(rows["step"], rows["value"], strict=True):
            if step > active.last_step:
                active.trial.report(float(value), int(step))
                active.last_step, active.last_value = step, float(value)

    def prune(self, backend: Backend, manifest: Manifest, active: Active) -> None:
        reason = f"pruned by Optuna at step {int(active.last_step)} ({active.last_value})"
        active.pruned = True
        backend.cancel(self.sweep, manifest, [active.run_id], pruned=reason)
        self.say(f"trial {active.trial.number} (run {active.run_id}): {reason}")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddle-hpc search", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    args = parser.parse_args(argv)
    return drive(SweepDir(args.sweep_dir.resolve()), make_console())
