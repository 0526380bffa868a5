"""paddle_hpc: PaddlePaddle experiments on Slurm clusters."""

from paddle_hpc.metrics import log_metrics

__all__ = ["log_metrics"]
__version__ = "0.1.0"
