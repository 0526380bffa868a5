"""A small PaddleNLP Trainer run, configured the way PaddleNLP's own examples are: its
TrainingArguments from the command line (--output_dir, --learning_rate, ...)."""

import numpy as np
import paddle
from paddlenlp.trainer import PdArgumentParser, Trainer, TrainingArguments


class Data(paddle.io.Dataset):  # type: ignore[misc]
    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(n, 8)).astype("float32")
        self.y = (self.x[:, 0] > 0).astype("int64")

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, object]:
        return {"x": self.x[i], "labels": self.y[i]}


class Model(paddle.nn.Layer):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.fc = paddle.nn.Linear(8, 2)

    def forward(self, x: paddle.Tensor, labels: paddle.Tensor | None = None) -> object:
        logits = self.fc(x)
        if labels is None:
            return logits
        return paddle.nn.functional.cross_entropy(logits, labels), logits


def accuracy(pred: object) -> dict[str, float]:
    predictions, labels = pred.predictions, pred.label_ids  # type: ignore[attr-defined]
    return {"accuracy": float((predictions.argmax(-1) == labels).mean())}


if __name__ == "__main__":
    (args,) = PdArgumentParser(TrainingArguments).parse_args_into_dataclasses()
    trainer = Trainer(
        model=Model(),
        args=args,
        train_dataset=Data(64, 0),
        eval_dataset=Data(16, 1),
        compute_metrics=accuracy,
    )
    trainer.train()
    trainer.evaluate()
