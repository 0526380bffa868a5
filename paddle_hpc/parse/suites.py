"""The Paddle suites' own training and evaluation log lines -> (step, name, value).

Each format is the suite's own format string (file named below) and was checked against
real logs (tests/fixtures/logs/). Names keep phases apart:

- training values keep the suite's names: `loss`, `acc`, `lr`;
- evaluation values are `eval.<name>`, at the step of the training line they follow;
- the best value a suite reports itself is `best.eval.<name>`, with `best.epoch` or
  `best.step` where the suite says when it was reached.

The formats, by suite (training; evaluation; best):

- PaddleOCR, `tools/program.py`: `epoch: [1/2], global_step: 4, loss: ..`;
  `cur metric, acc: ..`; `best metric, acc: .., best_epoch: 1`.
- PaddleDetection, `ppdet/engine/callbacks.py`: `Epoch: [0] [ 20/87] learning_rate: ..`;
  pycocotools' `Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] =
  ..` (as `eval.bbox.AP`, `AP50`, `APs`, `AR100`, ..) and VOC's `mAP(0.50, 11point) =
  ..%`; `Best test bbox ap is 0.5.`
- PaddleClas, `ppcls/engine/train/utils.py` and `engine.py`:
  `[Train][Epoch 1/2][Iter: 0/4]lr(..): .., top1: ..` and the epoch's `[Avg]`;
  `[Eval][Epoch 1][Avg]top1: ..`; `[Eval][Epoch 1][best metric: 0.5]`.
- PaddleSeg, `paddleseg/core/train.py` and `val.py`: `[TRAIN] epoch: 1, iter: 10/100,
  loss: ..`; `[EVAL] #Images: 4 mIoU: .. Acc: ..`; `[EVAL] The model with the best
  validation mIoU (0.5) was saved at iter 10.`
- PaddleNLP's Trainer, `paddlenlp/trainer/trainer_callback.py`: `loss: ..,
  learning_rate: .., global_step: 10, ..`; `eval_loss: .., eval_accuracy: ..`.
- PaddleNLP's examples: `global step 10, epoch: 1, batch: 10, loss: ..`;
  `eval dev loss: .., acc: ..`.

Non-numeric fields (`eta`, `is_float16: False`) are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
NOT_METRICS = frozenset({"eta"})
# A 'name: value' pair, the value maybe followed by a unit ('0.14 s', '0.02s', '7.5 samples/s').
_PAIR = re.compile(
    rf"([A-Za-z_][\w ]*?)(?:\(\w*\))?: ({NUMBER})(?: ?[A-Za-z/]+)?(?=,|\s|\||$)", re.IGNORECASE
)
# Lines that can be none of the formats below skip every other search.
_MAYBE = re.compile(
    r"poch|metric|global|Average|Best test|mAP\(|Total sample|\[TRAIN\]|\[EVAL\]|eval"
)

_OCR = re.compile(r"epoch: \[(\d+)/\d+\], (?:global_step: (\d+), )?(.*)")
_OCR_EVAL = re.compile(r"\b(cur|best) metric, (.*)")
_DET = re.compile(r"Epoch: \[(\d+)\] \[\s*(\d+)/(\d+)\] (.*)")
_COCO_TYPE = re.compile(r"Evaluate annotation type \*(\w+)\*")
_COCO = re.compile(
    r"Average (?:Precision|Recall) +\((AP|AR)\) @\[ IoU=([\d.:]+) +\| area= *(\w+) "
    rf"\| maxDets= *(\d+) \] = ({NUMBER})"
)
_VOC = re.compile(rf"mAP\(({NUMBER}), \w+\) = ({NUMBER})%")
_DET_BEST = re.compile(rf"Best test (\w+) (\w+) is ({NUMBER})\.")
_DET_FPS = re.compile(rf"Total sample number: \d+, average FPS: ({NUMBER})")
_CLAS = re.compile(r"\[(Train|Eval)\]\[Epoch (\d+)(?:/\d+)?\]\[(?:Iter: (\d+)/(\d+)|(Avg))\](.*)")
_CLAS_BEST = re.compile(rf"\[Eval\]\[Epoch (\d+)\]\[best metric: ({NUMBER})\]")
_SEG = re.compile(r"\[TRAIN\] epoch: (\d+), iter: (\d+)/\d+, (.*)")
_SEG_EVAL = re.compile(r"\[EVAL\] #Images: \d+ (.*)")
_SEG_BEST = re.compile(
    rf"\[EVAL\] The (EMA )?model with the best validation mIoU \(({NUMBER})\) was saved at "
    r"iter (\d+)"
)
_NLP_EXAMPLE = re.compile(r"global step (\d+), epoch: (\d+), batch: \d+, (.*)")
_NLP_EXAMPLE_EVAL = re.compile(r"\beval (?:\w+ )?(loss: .*)")
_NLP_TRAINER = re.compile(r"(?:^|\s)(loss: .*\bglobal_step: (\d+).*)")
_NLP_TRAINER_EVAL = re.compile(r"(?:^|\s)(eval_\w+: .*)")
_COCO_AREA = {"all": "", "small": "s", "medium": "m", "large": "l"}
_RENAME = {"progress_or_epoch": "epoch"}

Found = list[tuple[str, float]]


def pairs(text: str) -> Iterator[tuple[str, float]]:
    """'loss: 0.5, ips: 7.5 samples/s, eta: 1 day, 2:00:00' -> loss, ips (not eta)."""
    for name, value in _PAIR.findall(text):
        name = name.strip()
        if name not in NOT_METRICS:
            yield _RENAME.get(name, name), float(value)


def coco_name(kind: str, iou: str, area: str, max_dets: str) -> str:
    """pycocotools' summary line -> its usual short name: AP, AP50, APs, AR100, ARl."""
    name = kind
    if iou != "0.50:0.95":
        name += str(round(float(iou) * 100))
    if area != "all":
        return name + _COCO_AREA.get(area, area)
    return name + max_dets if kind == "AR" else name


class SuiteLog:
    """Reads one log's lines in order; keeps what a later line needs (the last training
    step, the COCO annotation type, PaddleClas's iterations per epoch)."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.coco_type = "bbox"
        self.iters: int | None = None

    def read(self, text: str) -> tuple[int | None, Found] | None:
        """The step and values of one line, or None when it is no suite's line."""
        if _MAYBE.search(text) is None:
            return None
        return self._clas(text) or self._train(text) or self._eval(text)

    def _train(self, text: str) -> tuple[int | None, Found] | None:
        if match := _NLP_EXAMPLE.search(text):
            step, epoch, rest = match.groups()
            return self._at(int(step), [("epoch", float(epoch)), *pairs(rest)])
        if match := _DET.search(text):
            epoch, batch, steps, rest = match.groups()
            step = int(epoch) * int(steps) + int(batch)
            return self._at(step, [("epoch", float(epoch)), *pairs(rest)])
        if match := _SEG.search(text):
            epoch, step, rest = match.groups()
            return self._at(int(step), [("epoch", float(epoch)), *pairs(rest)])
        if match := _OCR.search(text):
            epoch, step, rest = match.groups()
            found = [("epoch", float(epoch)), *pairs(rest)]
            return self._at(int(step), found) if step else (None, found)
        if match := _NLP_TRAINER.search(text):
            rest, step = match.groups()
            found = [(name, value) for name, value in pairs(rest) if name != "global_step"]
            return self._at(int(step), found)
        return None

    def _eval(self, text: str) -> tuple[int | None, Found] | None:
        if match := _OCR_EVAL.search(text):
            which, rest = match.groups()
            if which == "cur":
                return self.step, [(f"eval.{name}", value) for name, value in pairs(rest)]
            return self.step, [
                ("best.epoch", value) if name == "best_epoch" else (f"best.eval.{name}", value)
                for name, value in pairs(rest)
            ]
        if match := _COCO.search(text):
            kind, iou, area, max_dets, value = match.groups()
            if float(value) < 0:  # pycocotools' -1: no ground truth of that size
                return self.step, []
            name = coco_name(kind, iou, area, max_dets)
            return self.step, [(f"eval.{self.coco_type}.{name}", float(value))]
        if match := _COCO_TYPE.search(text):
            self.coco_type = match[1]
            return None
        if match := _VOC.search(text):
            threshold, value = match.groups()
            name = f"eval.bbox.AP{round(float(threshold) * 100)}"
            return self.step, [(name, float(value) / 100)]
        if match := _DET_BEST.search(text):
            key, func, value = match.groups()
            return self.step, [(f"best.eval.{key}.{'AP' if func == 'ap' else func}", float(value))]
        if match := _DET_FPS.search(text):
            return self.step, [("eval.fps", float(match[1]))]
        if match := _SEG_EVAL.search(text):
            return self.step, [(f"eval.{name}", value) for name, value in pairs(match[1])]
        if match := _SEG_BEST.search(text):
            ema, value, step = match.groups()
            name = "best.eval.ema_mIoU" if ema else "best.eval.mIoU"
            return self.step, [(name, float(value)), ("best.step", float(step))]
        if match := _NLP_TRAINER_EVAL.search(text):
            return self.step, [
                (f"eval.{name[5:]}", value)
                for name, value in pairs(match[1])
                if name[:5] == "eval_"
            ]
        if match := _NLP_EXAMPLE_EVAL.search(text):
            return self.step, [(f"eval.{name}", value) for name, value in pairs(match[1])]
        return None

    def _clas(self, text: str) -> tuple[int | None, Found] | None:
        if match := _CLAS_BEST.search(text):
            return self.step, [
                ("best.eval.metric", float(match[2])),
                ("best.epoch", float(match[1])),
            ]
        match = _CLAS.search(text)
        if match is None:
            return None
        phase, epoch, iteration, iters, avg, rest = match.groups()
        if phase == "Eval":  # a batch's values, or the evaluation's averages
            if not avg:
                return self.step, []
            return self.step, [(f"eval.{name}", value) for name, value in pairs(rest)]
        if iters:
            self.iters = int(iters)
        if avg:  # the epoch's averages: the same running averages, at the epoch's end
            step = int(epoch) * self.iters if self.iters else self.step
            return self._at(step, [("epoch", float(epoch)), *pairs(rest)])
        step = (int(epoch) - 1) * int(iters) + int(iteration) + 1  # PaddleClas's global_step
        return self._at(step, [("epoch", float(epoch)), *pairs(rest)])

    def _at(self, step: int | None, found: Found) -> tuple[int | None, Found]:
        if step is not None:
            self.step = step
        return step, found
