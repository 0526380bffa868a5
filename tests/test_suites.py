"""The Paddle suites' own log lines (tests/fixtures/logs/, real runs where the suite could
run here) -> metric rows, and what reaches the runs table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from paddle_hpc.collect.tables import finals
from paddle_hpc.parse.suites import SuiteLog, coco_name
from paddle_hpc.parse.worker_logs import MetricRow, log_metrics

FIXTURES = Path(__file__).parent / "fixtures" / "logs"


def lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines(keepends=True)


def by_name(rows: list[MetricRow]) -> dict[str, list[tuple[int | None, float]]]:
    out: dict[str, list[tuple[int | None, float]]] = {}
    for row in rows:
        out.setdefault(row.name, []).append((row.step, row.value))
    return out


def finals_of(rows: list[MetricRow]) -> dict[str, float]:
    frame = pd.DataFrame(
        {
            "run_id": ["r"] * len(rows),
            "step": [r.step for r in rows],
            "name": [r.name for r in rows],
            "value": [r.value for r in rows],
            "source": ["runs/r/logs/node0/workerlog.0"] * len(rows),
        }
    )
    return {str(k): float(v) for k, v in finals(frame).loc["r"].items()}


def test_paddleocr_training_and_evaluation_of_a_real_run() -> None:
    log = lines("paddleocr-rec-train-eval.workerlog.0")
    rows = log_metrics(log)
    names = by_name(rows)
    training = [i + 1 for i, t in enumerate(log) if "global_step:" in t]
    evaluation = [i + 1 for i, t in enumerate(log) if "cur metric," in t or "best metric," in t]
    assert len(training) == 4 and len(evaluation) == 5
    assert {r.line for r in rows} == set(training) | set(evaluation)  # every one, nothing else
    assert names["loss"] == [(2, 39.816195), (4, 31.900607), (6, 24.971563), (8, 18.405097)]
    assert names["eval.acc"] == [(4, 0.0), (8, 0.0)]
    assert names["eval.norm_edit_dis"] == [(4, 0.10104222851527389), (8, 6.249996093998789e-07)]
    assert names["eval.fps"] == [(4, 20.05156665413734), (8, 30.46424555569023)]
    assert names["best.epoch"] == [(4, 1.0), (8, 2.0), (8, 2.0)]
    assert "best.eval.is_float16" not in names and "eta" not in names

    final = finals_of(rows)
    # training's batch accuracy and evaluation's accuracy stay apart
    assert final["final.acc"] == 0.0 and final["final.eval.acc"] == 0.0
    assert final["final.norm_edit_dis"] == 0.000001  # the last training line's
    assert final["final.eval.norm_edit_dis"] == 6.249996093998789e-07
    assert final["best.eval.norm_edit_dis"] == 6.249996093998789e-07 and final["best.epoch"] == 2
    assert "final.best.eval.acc" not in final


def test_paddleocr_without_global_step_and_old_lines() -> None:
    rows = by_name(log_metrics(lines("paddleocr.log")))
    assert rows["loss"] == [(20, 3.915012), (10, 1.871535), (None, 38.897942)]
    assert rows["ips"] == [(20, 7.59025), (10, 9.71838)]
    assert rows["CTCLoss"] == [(None, 36.289278)]
    assert "eta" not in rows and "days" not in rows


def test_paddleocr_config_error_is_no_metric() -> None:
    assert log_metrics(lines("paddleocr-bad-option.workerlog.0")) == []


def test_paddledetection_training_lines() -> None:
    suite = SuiteLog()
    step, found = suite.read(lines("paddledet.log")[1]) or (None, [])
    values = dict(found)
    assert step == 0 and values["learning_rate"] == 0.04 and values["loss_vfl"] == 1.216707
    assert values["batch_cost"] == 15.7452 and values["ips"] == 1.5243 and "eta" not in values
    assert suite.read("Epoch: [2] [ 10/593] learning_rate: 0.1 loss: 1.0") == (
        2 * 593 + 10,
        [("epoch", 2.0), ("learning_rate", 0.1), ("loss", 1.0)],
    )
    assert suite.read(lines("paddledet.log")[0]) is None


def test_paddledetection_coco_and_voc_evaluation() -> None:
    rows = by_name(log_metrics(lines("paddledet-eval.log")))
    assert rows["loss"] == [(0, 2.5), (3, 2.1), (4, 1.9)]
    # pycocotools' twelve lines, at the step they follow; its -1 (no such objects) left out
    assert rows["eval.bbox.AP"] == [(3, 0.834)]
    assert rows["eval.bbox.AP50"][0] == (3, 1.0) and rows["eval.bbox.AP75"] == [(3, 1.0)]
    assert rows["eval.bbox.APm"] == [(3, 0.834)] and "eval.bbox.APs" not in rows
    assert rows["eval.bbox.AR1"] == [(3, 0.85)] and rows["eval.bbox.AR100"] == [(3, 0.85)]
    assert rows["eval.bbox.ARm"] == [(3, 0.85)] and "eval.bbox.ARl" not in rows
    assert rows["eval.fps"] == [(3, 12.5)]
    assert rows["best.eval.bbox.AP"] == [(3, 0.834)]
    # VOC's percentage as a fraction, like COCO's, after epoch 1's first batch (step 4)
    assert rows["eval.bbox.AP50"][1] == (4, pytest.approx(0.7512))


def test_coco_names() -> None:
    assert coco_name("AP", "0.50:0.95", "all", "100") == "AP"
    assert coco_name("AP", "0.50", "all", "100") == "AP50"
    assert coco_name("AP", "0.50:0.95", "large", "100") == "APl"
    assert coco_name("AR", "0.50:0.95", "all", "10") == "AR10"
    assert coco_name("AR", "0.50:0.95", "medium", "100") == "ARm"
    assert coco_name("AP", "0.50:0.95", "all", "20") == "AP"  # keypoints' maxDets=20


def test_paddleclas_training_evaluation_and_best() -> None:
    rows = log_metrics(lines("paddleclas.log"))
    names = by_name(rows)
    # global_step = (epoch - 1) * iterations + iteration + 1, as PaddleClas counts it
    assert names["loss"][:3] == [(35, 5.90154), (36, 5.88631), (36, 5.88631)]
    assert names["loss"][3:] == [(37, 1.64523), (47, 1.5)]
    assert names["top1"][2] == (36, 0.19867)  # the epoch's [Avg], at the epoch's end
    assert names["lr"] == [(35, 0.1), (36, 0.1), (37, 0.1), (47, 0.005)]
    assert names["eval.top1"] == [(36, 0.216)]  # only [Avg]: not each batch's values
    assert names["eval.CELoss"] == [(36, 49.57694)]
    assert names["best.eval.metric"] == [(36, 0.2160000021457672)]
    assert names["best.epoch"] == [(36, 1.0)]
    assert names["batch_cost"][-1] == (47, 0.5) and names["ips"][-1] == (47, 64.0)
    assert not any(r.line in (5, 6) for r in rows)  # [Eval][Iter] lines


def test_paddleseg_training_evaluation_and_best() -> None:
    names = by_name(log_metrics(lines("paddleseg.log")))
    assert names["loss"] == [(2, 0.7485), (4, 0.7505)]
    assert names["ips"] == [(2, 129.1817), (4, 960.5093)] and names["epoch"] == [(2, 1), (4, 1)]
    assert names["eval.mIoU"] == [(4, 0.3512)] and names["eval.Kappa"] == [(4, 0.0312)]
    assert "eval.#Images" not in names and "eval.Images" not in names
    assert names["best.eval.mIoU"] == [(4, 0.3512)] and names["best.step"] == [(4, 4.0)]


def test_paddlenlp_trainer_of_a_real_run() -> None:
    log = lines("paddlenlp-trainer.log")
    assert any("\x1b[" in t for t in log)  # its logger colours lines, in a file too
    names = by_name(log_metrics(log))
    assert [s for s, _ in names["loss"]] == [2, 4, 6, 8, 10, 12, 14, 16]
    assert names["loss"][0] == (2, 1.08474898)
    assert names["epoch"][-1] == (16, 2.0)  # progress_or_epoch
    assert "global_step" not in names and "progress_or_epoch" not in names
    assert [s for s, _ in names["eval.accuracy"]] == [4, 8, 12, 16, 16]
    assert names["eval.accuracy"][-1] == (16, 0.875)
    assert names["eval.loss"][0] == (4, 0.6375031471252441)
    assert "eval.progress_or_epoch" not in names and "train_runtime" not in names


def test_paddlenlp_example_lines() -> None:
    rows = log_metrics(lines("paddlenlp.log"))
    assert {(r.line, r.step, r.value) for r in rows if r.name == "loss"} == {
        (1, 90, 0.39998),
        (2, 100, 0.40286),
        (4, 60, 2.16761),
    }
    assert {(r.line, r.step, r.name, r.value) for r in rows if r.line == 3} == {
        (3, 100, "eval.loss", 0.47756),
        (3, 100, "eval.accu", 0.82402),
    }
    nlp = "global step 5, epoch: 1, batch: 5, loss: nan, learning rate: 1.00000e-05"
    _, found = SuiteLog().read(nlp) or (0, [])
    assert dict(found)["learning rate"] == 1e-5 and str(dict(found)["loss"]) == "nan"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "epoch: [x/2], loss: 1\n",
        "Average Precision  (AP) @[ IoU=0.50 | area=   all | maxDets=100 ] = \n",
        "[Eval][Epoch 1][best metric: ]\n",
        "best metric, \n",
        "eval_loss: nan-ish, eval_acc: \n",
        "\x1b[31m\x1b[0m\n",
        "[TRAIN] epoch: 1, iter: 3/, loss: 1\n",
    ],
)
def test_broken_lines_give_no_values(text: str) -> None:
    assert log_metrics([text]) == []
