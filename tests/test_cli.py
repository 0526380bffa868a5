"""The command line as a user runs it: a real process, real exit codes."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from paddle_hpc.cli import VERBS
from paddle_hpc.core import index, runstate
from paddle_hpc.core.layout import SweepDir
from paddle_hpc.core.runstate import RunState
from paddle_hpc.sweep import parse_args
from tests.fakes import make_sweep


def paddle_hpc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, env=env, check=False
    )


def test_unknown_verb_is_a_usage_error() -> None:
    result = paddle_hpc("paddle_hpc.cli", "frobnicate")
    assert result.returncode == 2
    assert "unknown verb 'frobnicate'" in result.stderr and "info" in result.stderr


def test_help_lists_the_verbs() -> None:
    result = paddle_hpc("paddle_hpc.cli", "--help")
    assert result.returncode == 0 and "usage: paddle-hpc <verb> [options]" in result.stdout


def test_missing_slurm_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    result = paddle_hpc("paddle_hpc.info", env=env)
    assert result.returncode == 1
    assert "`scontrol` is not on the PATH" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slurm
def test_info_reads_the_cluster() -> None:
    result = paddle_hpc("paddle_hpc.cli", "info")
    assert result.returncode == 0, result.stderr
    assert "paddlehpc" in result.stdout and "1001" in result.stdout
    shown = json.loads(paddle_hpc("paddle_hpc.cli", "info", "--json").stdout)
    assert (shown["ClusterName"], shown["MaxArraySize"]) == ("paddlehpc", "1001")


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_runs_both_ways(verb: str) -> None:
    assert paddle_hpc("paddle_hpc.cli", verb, "--help").returncode == 0
    module = VERBS[verb][0].removesuffix(".__main__")
    both = paddle_hpc(module, "--help")
    assert both.returncode == 0 and f"paddle-hpc {verb}" in both.stdout


@pytest.mark.parametrize(
    "args", [["status"], ["logs", "r1"], ["cancel"], ["retry"], ["clean"], ["collect"]]
)
def test_an_unknown_sweep_is_one_line_and_exit_1(tmp_path: Path, args: list[str]) -> None:
    verb, *rest = args
    result = paddle_hpc("paddle_hpc.cli", verb, str(tmp_path / "no sweep $(x)"), *rest)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "is not a sweep directory" in result.stderr


def test_the_version_is_the_installed_distributions() -> None:
    shown = paddle_hpc("paddle_hpc.cli", "--version")
    assert shown.returncode == 0
    assert shown.stdout.strip() == f"paddle-hpc {importlib.metadata.version('paddle-hpc')}"


def test_flags_go_anywhere_among_the_overrides(tmp_path: Path) -> None:
    """As Hydra's own command lines take them; the bundled example, planned only (here:
    a dry run for Slurm asks the cluster about its partitions)."""
    env = {**os.environ, "PADDLE_HPC_INDEX": str(tmp_path / "index.jsonl")}
    argv = ["paddle_hpc.sweep", "optim.lr=0.1,0.2", "--dry-run", "data.batch_size=8"]
    argv.append("cluster.executor=local")
    result = subprocess.run(
        [sys.executable, "-m", *argv], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "# dry run: 2 run(s) (2 new, 0 already in the sweep)" in result.stdout
    assert "(the bundled example: there is no ./conf here; pass -cd DIR)" in result.stdout
    assert "--lr 0.2 --batch-size 8" in result.stdout or "--lr 0.1 --batch-size 8" in result.stdout
    assert not (tmp_path / "sweeps").exists()


def test_status_and_list_as_json(tmp_path: Path) -> None:
    sweep_dir = make_sweep(tmp_path / "sweep $(x)", {"ra": {"lr": "0.1"}, "rb": {"lr": "0.2"}})
    runstate.write(SweepDir(sweep_dir).run("ra").state, RunState("COMPLETED", returncode=0))
    env = {**os.environ, "PADDLE_HPC_INDEX": str(tmp_path / "index.jsonl")}
    index.record(sweep_dir, "t", "2026-01-01T00:00:00+00:00", tmp_path / "index.jsonl")
    status = paddle_hpc("paddle_hpc.cli", "status", str(sweep_dir), "--json", env=env)
    assert status.returncode == 0, status.stderr  # a run still pending: not a failure
    found = json.loads(status.stdout)
    assert found["dir"] == str(sweep_dir.resolve()) and found["counts"] == {
        "COMPLETED": 1,
        "PENDING": 1,
    }
    assert [(r["run_id"], r["state"], r["swept"]) for r in found["runs"]] == [
        ("ra", "COMPLETED", {"lr": "0.1"}),
        ("rb", "PENDING", {"lr": "0.2"}),
    ]
    listed = json.loads(paddle_hpc("paddle_hpc.cli", "list", "--json", env=env).stdout)
    assert [(s["name"], s["dir"], s["counts"]) for s in listed] == [
        ("t", str(sweep_dir), {"COMPLETED": 1, "PENDING": 1})
    ]


def test_one_spelling_follows_until_done_the_old_ones_still_work() -> None:
    for argv in (["-f", "a=1"], ["a=1", "--follow"], ["--wait", "a=1"]):
        args = parse_args(argv)
        assert args.follow and args.overrides == ["a=1"]
    assert "--wait" not in paddle_hpc("paddle_hpc.sweep", "--help").stdout
    shown = paddle_hpc("paddle_hpc.status", "--help").stdout
    assert "--follow" in shown and "--watch" not in shown


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_help_names_no_source_file(verb: str) -> None:
    shown = paddle_hpc("paddle_hpc.cli", verb, "--help").stdout
    assert not re.search(r"\b\w+\.py\b", shown), shown
