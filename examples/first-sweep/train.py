"""Fits y = 3x + 2 with a small network, data parallel over every GPU of every node."""

import argparse

import paddle
import paddle.distributed as dist

from paddle_hpc import log_metrics

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--hidden", type=int, default=16)
parser.add_argument("--epochs", type=int, default=50)
args = parser.parse_args()

dist.init_parallel_env()  # joins the ranks paddle.distributed.launch started
world = dist.get_world_size()
paddle.seed(dist.get_rank())  # each rank draws its own shard of data
x = paddle.rand([512, 1]) * 4 - 2
y = 3 * x + 2 + 0.1 * paddle.randn([512, 1])

net = paddle.nn.Sequential(
    paddle.nn.Linear(1, args.hidden), paddle.nn.Tanh(), paddle.nn.Linear(args.hidden, 1)
)
model = paddle.DataParallel(net)  # averages the gradients over all ranks
optimizer = paddle.optimizer.Adam(learning_rate=args.lr, parameters=model.parameters())

for epoch in range(args.epochs):
    loss = paddle.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    optimizer.clear_grad()
    dist.all_reduce(loss)  # the sum over ranks
    log_metrics(step=epoch, loss=float(loss) / world)  # global rank 0 writes it
