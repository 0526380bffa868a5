"""Files and folders (inodes) an ended run leaves, before and after `clean`.

Submits README's first sweep (`examples/first-sweep`: 4 runs of 2 nodes x 2 ranks) on
the test cluster, follows it to the end, then counts with `paddle-hpc info --json`
before and after `clean`, and checks that `logs` and `collect` read the cleaned runs.

    make cluster
    .venv/bin/python benchmarks/file_count.py

Target (issue 25): 8 inodes or fewer per ended run after `clean`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "first-sweep"
TARGET = 8


def module(cwd: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", f"paddle_hpc.{name}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{name} {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="paddle-hpc-files-"))
    project = work / "project"
    shutil.copytree(EXAMPLE, project)
    try:
        module(project, "sweep", "-cd", "conf", "-f", "train.epochs=1")
        (sweep_dir,) = (project / "sweeps").iterdir()
        before = json.loads(module(project, "info", str(sweep_dir), "--json").stdout)
        said = module(project, "clean", str(sweep_dir)).stdout.strip()
        after = json.loads(module(project, "info", str(sweep_dir), "--json").stdout)
        run_id = next((sweep_dir / "runs").iterdir()).name
        shown = module(project, "logs", str(sweep_dir), run_id, "--rank", "3").stdout
        assert "logs.zip" in shown, shown
        module(project, "collect", str(sweep_dir))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"clean: {said}")
    print("| | inodes per ended run | bytes in the sweep |")
    print("| --- | --- | --- |")
    print(f"| after the runs ended | {before['inodes_per_run']} | {before['bytes']:,} |")
    print(f"| after `clean` | {after['inodes_per_run']} | {after['bytes']:,} |")
    met = after["inodes_per_run"] <= TARGET
    print(f"target: {TARGET} or fewer per run after clean: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
