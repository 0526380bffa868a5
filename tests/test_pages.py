"""The interactive report's pure parts: a metric's panel, the objective, the parallel
coordinates' axes, fed literal names and runs tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paddle_hpc.collect.tables import ERROR_COLUMNS
from paddle_hpc.pages.interactive import failures
from paddle_hpc.pages.kinds import EVALUATION, SYSTEM, TRAINING, panel
from paddle_hpc.pages.params import MISSING, axis_positions, objective_of, ordered


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("loss", TRAINING),
        ("lr", TRAINING),
        ("learning_rate", TRAINING),
        ("loss_cls", TRAINING),
        ("evaluate", TRAINING),  # a word, not a prefix
        ("eval.acc", EVALUATION),
        ("eval_loss", EVALUATION),  # PaddleNLP
        ("best.eval.hmean", EVALUATION),  # PaddleOCR's best
        ("val_loss", EVALUATION),
        ("test/acc", EVALUATION),
        ("validation.f1", EVALUATION),
        ("avg_reader_cost", SYSTEM),  # PaddleOCR, PaddleClas
        ("batch_cost", SYSTEM),
        ("ips", SYSTEM),
        ("interval_samples_per_second", SYSTEM),  # PaddleNLP
        ("max_mem_reserved", SYSTEM),
        ("sys.gpu.0.util", SYSTEM),
        ("eta", SYSTEM),
    ],
)
def test_each_metric_has_its_panel(name: str, kind: str) -> None:
    assert panel(name) == kind


def test_the_objective_is_asked_for_or_the_first_evaluation_value() -> None:
    runs = pd.DataFrame(columns=["lr", "state", "final.loss", "final.eval.acc", "best.eval.f1"])
    assert objective_of(runs, "final.loss") == "final.loss"
    assert objective_of(runs, None) == "best.eval.f1"
    assert objective_of(runs[["lr", "state", "final.loss", "final.eval.acc"]], None) == (
        "final.eval.acc"
    )
    assert objective_of(runs[["lr", "state"]], None) is None


def test_axes_place_numbers_by_value_and_text_by_order() -> None:
    lr, ends = axis_positions(pd.Series([1e-4, 1e-2, 1e-3, 1e-4]))  # log spaced
    assert lr == pytest.approx([0.0, 1.0, 0.5, 0.0]) and ends == ["0.0001", "0.01"]
    batch, _ = axis_positions(pd.Series([32, 128, 64]))  # linear
    assert batch == pytest.approx([0.0, 1.0, 1 / 3])
    acc, _ = axis_positions(pd.Series([0.5, np.nan, 0.9]))
    assert acc == pytest.approx([0.0, MISSING, 1.0])
    model, labels = axis_positions(pd.Series(["vit b", "cnn", "vit b", "$x"]))
    assert labels == ["$x", "cnn", "vit b"] and model == pytest.approx([1.0, 0.5, 1.0, 0.0])
    unknown, labels = axis_positions(pd.Series([np.nan, np.nan]))  # no run has it
    assert labels == [""] and unknown == pytest.approx([0.0, 0.0])
    same, _ = axis_positions(pd.Series([3, 3]))
    assert same == pytest.approx([0.5, 0.5])
    assert ordered(pd.Series(["32", "128", "64"])) == ["32", "64", "128"]


def test_a_swept_list_is_a_label() -> None:
    files = pd.Series([np.array(["/data/missing.txt"]), np.array(["a"]), np.array(["a"])])
    places, labels = axis_positions(files)
    assert labels == ["['/data/missing.txt']", "['a']"] and places == pytest.approx([0, 1, 1])


def test_pruned_runs_are_a_group_of_what_went_wrong() -> None:
    runs = pd.DataFrame(
        {"state": ["COMPLETED", "PRUNED"], "reason": [None, "PRUNED: trial 3 at step 4"]},
        index=pd.Index(["ra", "rb"]),
    )
    errors = pd.DataFrame(columns=ERROR_COLUMNS)
    text = failures(errors, runs).text
    assert "<b>PRUNED</b>: 1 run(s)" in text and "PRUNED: trial 3 at step 4" in text
    assert "<td>rb</td>" in text and "<td>ra</td>" not in text
    assert failures(errors, runs.iloc[:1]).text.endswith("<p>nothing</p>")


def test_a_failure_shows_its_traceback_or_else_its_logs_last_lines() -> None:
    row = dict.fromkeys(ERROR_COLUMNS, "")
    errors = pd.DataFrame(
        [
            row | {"run_id": "ra", "kind": "KeyError", "traceback": "Traceback\nKeyError: 'x'"},
            row
            | {
                "run_id": "rb",
                "kind": "TIMEOUT",
                "message": "Slurm state TIMEOUT",
                "tail": "slurmstepd: error: *** STEP 7.0 ON n1 CANCELLED AT <now> ***",
            },
            row | {"run_id": "rc", "kind": "NODE_FAIL", "traceback": np.nan, "tail": np.nan},
        ]
    )
    text = failures(errors, pd.DataFrame({"state": []})).text
    assert "<pre>Traceback\nKeyError: &#x27;x&#x27;</pre>" in text
    assert "<pre>slurmstepd: error: *** STEP 7.0 ON n1 CANCELLED AT &lt;now&gt; ***</pre>" in text
    assert text.count("<pre>") == 2  # none for a failure without lines
