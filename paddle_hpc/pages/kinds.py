"""Which panel a metric belongs on, by its name: training, evaluation or system. Pure.

Evaluation metrics are the ones a suite or `log_metrics` names as such (`eval.acc`,
`val_loss`, `best.eval.acc`, `test/acc`); system metrics are what the hardware and the
input pipeline did (throughput, reader cost, memory, GPU samples), which must not share
an axis with the loss.
"""

from __future__ import annotations

import re

TRAINING, EVALUATION, SYSTEM = "training", "evaluation", "system"
PANELS = (TRAINING, EVALUATION, SYSTEM)

_EVALUATION = re.compile(r"^(eval|evaluation|val|valid|validation|test|best)([._/-]|$)", re.I)
_SYSTEM = re.compile(
    r"^sys\.|(^|[._/-])(ips|throughput|samples?_per_s(ec(ond)?)?|tokens?_per_s(ec)?|"
    r"speed|reader_cost|batch_cost|data_time|batch_time|step_time|mem(ory)?(_\w+)?|"
    r"max_mem_(reserved|allocated)|gpu(_\w+)?|runtime|eta)$",
    re.I,
)


def panel(name: str) -> str:
    """The panel of the metric `name`."""
    if _SYSTEM.search(name):
        return SYSTEM
    if _EVALUATION.search(name):
        return EVALUATION
    return TRAINING
