"""When each resource shape would start, asked before anything is submitted: Slurm's
`sbatch --test-only` on the shape's own sbatch script, once per partition it names.
With sweep.earliest_partition, a shape that names several partitions is submitted to
the one expected to start it first, instead of letting Slurm choose among them when
it starts each task."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from paddle_hpc.backend.arrays import dry_run_script
from paddle_hpc.core.manifest import Manifest
from paddle_hpc.core.schema import SweepConfig
from paddle_hpc.slurm import SlurmClient
from paddle_hpc.slurm.pending import Estimate


def partitions_of(partition: str | None) -> list[str | None]:
    """'left, right' -> ['left', 'right']; None -> [None]: the default partition."""
    names = [p.strip() for p in (partition or "").split(",") if p.strip()]
    return list(names) if names else [None]


def shape_estimates(
    client: SlurmClient, sweep_dir: Path, manifest: Manifest, sweep: SweepConfig
) -> dict[int, list[Estimate]]:
    """Per shape that has runs, when it would start in each partition it names."""
    found: dict[int, list[Estimate]] = {}
    with tempfile.TemporaryDirectory(prefix="paddle-hpc-test-only-") as folder:
        for shape in sorted({r.shape for r in manifest.runs}):
            script = Path(folder) / f"shape{shape}.sh"
            script.write_text(dry_run_script(sweep_dir, manifest, shape, sweep))
            partition = manifest.shapes[shape]["resources"].get("partition")
            found[shape] = [client.will_start(script, p) for p in partitions_of(partition)]
    return found


def earliest(estimates: Sequence[Estimate]) -> Estimate | None:
    starts = [e for e in estimates if e.start is not None]
    return min(starts, key=lambda e: e.start) if starts else None  # type: ignore[arg-type,return-value]


def estimate_lines(found: dict[int, list[Estimate]]) -> list[str]:
    """'shape 0 would start at 2026-12-05 08:02 in partition debug on n[1-2]', a line per
    partition when a shape names several, the earliest marked."""
    lines = []
    for shape, estimates in found.items():
        first = earliest(estimates)
        for estimate in estimates:
            where = f" in partition {estimate.partition}" if estimate.partition else ""
            if estimate.start is None:
                lines.append(f"shape {shape} cannot start{where}: {estimate.error}")
                continue
            said = f"shape {shape} would start at {estimate.start:%Y-%m-%d %H:%M:%S}{where}"
            said += f" on {estimate.nodes}" if estimate.nodes else ""
            if estimate.preempts:
                said += f", preempting job(s) {', '.join(map(str, estimate.preempts))}"
            if len(estimates) > 1 and estimate is first:
                said += " (the earliest)"
            lines.append(said)
    return lines


def pin_earliest(
    manifest: Manifest, found: dict[int, list[Estimate]]
) -> tuple[Manifest, list[str]]:
    """Each shape naming several partitions set to the one expected to start it first;
    and what was picked, per shape."""
    shapes = list(manifest.shapes)
    picked = []
    for shape, estimates in found.items():
        first = earliest(estimates)
        if len(estimates) < 2 or first is None:
            continue
        resources = {**shapes[shape]["resources"], "partition": first.partition}
        shapes[shape] = {**shapes[shape], "resources": resources}
        picked.append(f"shape {shape} goes to partition {first.partition}, where it starts first")
    return replace(manifest, shapes=tuple(shapes)), picked


def estimated(
    sweep_dir: Path, manifest: Manifest, sweep: SweepConfig, client: SlurmClient | None = None
) -> tuple[Manifest, list[str]]:
    """The manifest to submit (each shape in its earliest partition, with
    sweep.earliest_partition) and what Slurm expects of each shape, as lines to print."""
    found = shape_estimates(client or SlurmClient(), sweep_dir, manifest, sweep)
    lines = estimate_lines(found)
    if sweep.earliest_partition:
        manifest, picked = pin_earliest(manifest, found)
        lines += picked
    return manifest, lines
