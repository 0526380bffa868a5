"""An ordinary Hydra app, unchanged for paddle_hpc: `-m hydra/launcher=paddle_hpc` runs
it on every node of each run, through Paddle's launcher."""

import hydra
import paddle.distributed as dist
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    dist.init_parallel_env()
    rank, world = dist.get_rank(), dist.get_world_size()
    score = cfg.optim.lr * cfg.data.batch_size
    print(f"rank {rank} of {world}: lr={cfg.optim.lr} batch_size={cfg.data.batch_size}")
    print(f"step 0 score={score}", flush=True)
    if world > 1:  # as a real training step would: rank 0's process holds the store
        dist.barrier()  # the other ranks still read while they join
    return float(score)


if __name__ == "__main__":
    main()
