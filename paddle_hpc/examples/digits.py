"""A small data-parallel classifier on scikit-learn's digits (no download needed).

Each rank trains on its shard of the training set; gradients are averaged with
paddle.distributed.all_reduce, which works with NCCL on GPUs and gloo on CPUs.
Seeded; logs loss and accuracy per epoch through paddle_hpc.log_metrics, and keeps a
checkpoint per epoch with paddle_hpc.checkpoint: a run that Slurm preempts or stops
near its time limit saves, is requeued, and resumes where it stopped.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import paddle
import paddle.distributed as dist
from sklearn.datasets import load_digits

from paddle_hpc import checkpoint, log_metrics


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def train_epoch(
    model: paddle.nn.Layer,
    optimizer: paddle.optimizer.Optimizer,
    x: np.ndarray,
    y: np.ndarray,
    shuffled: np.ndarray,
    batch: int,
    world: int,
) -> list[float]:
    """One pass over this rank's shard, in `shuffled` order; each batch's loss."""
    loss_fn = paddle.nn.CrossEntropyLoss()
    losses = []
    for first in range(0, len(shuffled), batch):
        idx = shuffled[first : first + batch]
        loss = loss_fn(model(paddle.to_tensor(x[idx])), paddle.to_tensor(y[idx]))
        (loss / world).backward()  # the all_reduce sum of these is the mean gradient
        for param in model.parameters():
            assert param.grad is not None
            dist.all_reduce(param.grad)
        optimizer.step()
        optimizer.clear_grad()
        losses.append(float(loss))
    return losses


def main() -> None:
    args = parse_args()
    dist.init_parallel_env()
    rank, world = dist.get_rank(), dist.get_world_size()
    paddle_version = paddle.version.full_version
    print(
        f"rank {rank} of world size {world}: {sys.executable}, Paddle {paddle_version}", flush=True
    )
    paddle.seed(args.seed)
    rng = np.random.default_rng(args.seed)

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    order = rng.permutation(len(x))
    train, test = order[:1500], order[1500:]
    per_rank = len(train) // world  # equal shards: every rank takes the same steps
    shard = train[rank * per_rank : (rank + 1) * per_rank]
    x_test, y_test = paddle.to_tensor(x[test]), paddle.to_tensor(y[test])

    model = paddle.nn.Sequential(
        paddle.nn.Linear(64, args.hidden), paddle.nn.ReLU(), paddle.nn.Linear(args.hidden, 10)
    )
    for param in model.parameters():  # every rank starts from rank 0's weights
        dist.broadcast(param, src=0)
    optimizer = paddle.optimizer.Adam(learning_rate=args.lr, parameters=model.parameters())

    start = 0
    if (found := checkpoint.load(model=model, optimizer=optimizer)) is not None:
        start = found.step + 1
        rng.bit_generator.state = found.extra["rng"]
        print(f"resumed from the checkpoint of epoch {found.step}", flush=True)
    for epoch in range(start, args.epochs):
        model.train()
        batch = max(1, args.batch_size // world)
        losses = train_epoch(model, optimizer, x, y, rng.permutation(shard), batch, world)
        mean_loss = paddle.to_tensor([float(np.mean(losses))])
        dist.all_reduce(mean_loss)
        model.eval()
        with paddle.no_grad():
            acc = float((model(x_test).argmax(axis=1) == y_test).astype("float32").mean())
        loss_value = mean_loss.item() / world
        log_metrics(step=epoch, loss=loss_value, acc=acc)
        if rank == 0:
            print(f"epoch {epoch}: loss {loss_value:.4f} acc {acc:.4f}", flush=True)
        checkpoint.save(
            epoch, model=model, optimizer=optimizer, extra={"rng": rng.bit_generator.state}
        )
        # every rank stops at the same epoch, or the others would wait in all_reduce
        stop = paddle.to_tensor([int(checkpoint.should_stop())])
        dist.all_reduce(stop, op=dist.ReduceOp.MAX)
        if stop.item():
            print(f"stopping after epoch {epoch}: Slurm asked", flush=True)
            break


if __name__ == "__main__":
    main()
