"""The only code that runs Slurm's commands (sbatch, sacct, scontrol, scancel)."""

from paddle_hpc.slurm.client import SlurmClient, sbatch_options
from paddle_hpc.slurm.parse import (
    JobRef,
    SacctRecord,
    expand_nodelist,
    parse_job_id,
    parse_sacct,
    parse_scontrol_config,
)
from paddle_hpc.slurm.runner import CommandResult, Runner, SubprocessRunner

__all__ = [
    "CommandResult",
    "JobRef",
    "Runner",
    "SacctRecord",
    "SlurmClient",
    "SubprocessRunner",
    "expand_nodelist",
    "parse_job_id",
    "parse_sacct",
    "parse_scontrol_config",
    "sbatch_options",
]
