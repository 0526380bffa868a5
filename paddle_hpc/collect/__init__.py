"""Every run's metrics, logs and Slurm accounting as pandas tables.

python -m paddle_hpc.collect SWEEP_DIR [--out DIR] [--format parquet|csv] [--sort KEY]

from paddle_hpc.collect import load
tables = load("sweeps/digits")   # .runs, .metrics, .errors
"""

from paddle_hpc.collect.collector import collect, load
from paddle_hpc.collect.tables import Outcome, Tables

__all__ = ["Outcome", "Tables", "collect", "load"]
