"""The Paddle suites' ways, end to end on the test cluster: values that look like markup,
per-run folders and a working directory, and PaddleNLP's own Trainer on two nodes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from paddle_hpc.collect import load as load_tables
from paddle_hpc.core.manifest import load
from tests.test_sweep_cluster import run_module, sweep, write_conf

SUITES = Path(__file__).parent / "suites"

NOTE = """\
import sys
from paddle_hpc import log_metrics
note = sys.argv[1]
if note == "[bold]":
    sys.exit(3)
log_metrics(step=0, acc=len(note) / 100)
"""
MARKUP = ("[/x]", "[bold]", "a]b[c $y$")


@pytest.mark.slurm
def test_values_that_look_like_markup_print_literally(tmp_path: Path) -> None:
    (tmp_path / "note.py").write_text(NOTE)
    write_conf(
        tmp_path,
        json.dumps(
            {
                "program": {"script": "note.py", "args": ["${note}"]},
                "note": "x",
                "resources": {"nodes": 1},
                "sweep": {"name": "markup", "grid": {"note": list(MARKUP)}},
            }
        ),
    )
    result = sweep(tmp_path, "--wait", "+files=[/data/missing.txt],[a]", timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "COMPLETED 4  FAILED 2" in result.stdout, out
    assert "Error" not in out and "[bold]" in result.stdout  # the failed runs' values
    assert "[/data/missing.txt]" in result.stdout

    sweep_dir = tmp_path / "sweeps" / "markup"
    status = run_module("paddle_hpc.status", str(sweep_dir), "--all")
    assert status.returncode == 1, status.stdout + status.stderr  # runs failed
    for value in (*MARKUP, "[/data/missing.txt]", "[a]"):
        assert value in status.stdout, status.stdout

    collected = run_module("paddle_hpc.collect", str(sweep_dir), "--sort", "final.acc")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "[/x]" in collected.stdout and "a]b[c $y$" in collected.stdout
    runs = load_tables(sweep_dir).runs
    failed = runs[runs["note"] == "[bold]"]
    # the script's own exit code, and Slurm's beside it
    assert failed["exit_code"].tolist() == [3, 3] and failed["slurm_exit_code"].notna().all()
    assert (runs[runs["state"] == "COMPLETED"]["exit_code"] == 0).all()

    report = run_module("paddle_hpc.report", str(sweep_dir))
    assert report.returncode == 0, report.stdout + report.stderr
    page = (sweep_dir / "report" / "index.html").read_text()
    assert "[/x]" in page and "a]b[c $y$" in page and "<bold>" not in page


SUITE_SCRIPT = """\
import json, os, sys
out = sys.argv[sys.argv.index("--out") + 1]
os.makedirs(out, exist_ok=True)
rank = os.environ["PADDLE_TRAINER_ID"]
with open(os.path.join(out, f"result-{rank}.json"), "w") as f:
    json.dump({
        "argv": sys.argv[1:],
        "cwd": os.getcwd(),
        "data": open("train_data/labels.txt").read(),
        "save_dir": os.environ["SAVE_DIR"],
    }, f)
"""


@pytest.mark.slurm
def test_run_folders_and_the_working_directory_together(tmp_path: Path) -> None:
    repo = tmp_path / "the suite's repo"
    (repo / "tools").mkdir(parents=True)
    (repo / "train_data").mkdir()
    (repo / "tools" / "train.py").write_text(SUITE_SCRIPT)
    (repo / "train_data" / "labels.txt").write_text("0 1 2")
    write_conf(
        tmp_path,
        json.dumps(
            {
                "program": {
                    "cwd": "the suite's repo",
                    "script": "tools/train.py",
                    "args": ["--out", "${run:dir}/output", "--id", "${run:id}"],
                },
                "launch": {"env": {"SAVE_DIR": "${run:dir}/ckpt"}},
                "resources": {"nodes": 2},
                # two runs whose swept values do not tell their output folders apart
                "sweep": {"name": "folders", "grid": {"+seed": [1, 2]}},
            }
        ),
    )
    result = sweep(tmp_path, "--wait", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    sweep_dir = tmp_path / "sweeps" / "folders"
    for run in load(sweep_dir).runs:
        run_dir = sweep_dir / "runs" / run.run_id
        for rank in ("0", "1"):  # one process on each of the two nodes
            written = json.loads((run_dir / "output" / f"result-{rank}.json").read_text())
            assert written["argv"] == ["--out", f"{run_dir}/output", "--id", run.run_id]
            assert written["cwd"] == str(repo) and written["data"] == "0 1 2"
            assert written["save_dir"] == f"{run_dir}/ckpt"
    assert not (repo / "output").exists()


@pytest.mark.slurm
def test_paddlenlp_trainer_on_two_nodes(tmp_path: Path, paddlenlp_python: str) -> None:
    write_conf(
        tmp_path,
        json.dumps(
            {
                "program": {
                    "script": str(SUITES / "paddlenlp_trainer.py"),
                    "args": [
                        *("--output_dir", "${run:dir}/output"),
                        *("--learning_rate", "${lr}"),
                        *("--num_train_epochs", "2", "--per_device_train_batch_size", "8"),
                        *("--per_device_eval_batch_size", "8", "--logging_steps", "2"),
                        *("--evaluation_strategy", "steps", "--eval_steps", "4"),
                        *("--save_strategy", "no", "--report_to", "none"),
                        *("--disable_tqdm", "true", "--seed", "0"),
                    ],
                },
                "lr": 0.1,
                "cluster": {"python": paddlenlp_python},
                "resources": {"nodes": 2, "time": "00:10:00"},
                "sweep": {"name": "nlp", "grid": {"lr": [0.1, 0.05]}},
            }
        ),
    )
    result = sweep(tmp_path, "--wait", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    sweep_dir = tmp_path / "sweeps" / "nlp"
    tables = load_tables(sweep_dir)
    runs, metrics = tables.runs, tables.metrics
    assert runs["lr"].tolist() == [0.1, 0.05] and (runs["nodelist"] == "n1,n2").all()
    # 64 samples, 8 per device on 2 nodes: 4 steps an epoch, 8 in all
    for run_id in runs.index:
        mine = metrics[metrics["run_id"] == run_id]
        steps = mine.groupby("name", observed=True)["step"].apply(list).to_dict()
        assert steps["loss"] == [2, 4, 6, 8], steps
        assert steps["eval.accuracy"] == [4, 8, 8], steps  # every 4 steps, then evaluate()
    assert runs["final.eval.accuracy"].between(0, 1).all()
    assert runs["final.eval.loss"].notna().all() and runs["final.loss"].notna().all()
    assert "final.eval_accuracy" not in runs and tables.errors.empty
    collected = subprocess.run(
        [sys.executable, "-m", "paddle_hpc.collect", str(sweep_dir), "--sort", "final.eval.loss"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "best 2 by final.eval.loss" in collected.stdout, collected.stdout + collected.stderr
