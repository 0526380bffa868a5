"""Optuna search: the search space from the config (`space`), the study on disk
(`study`), and the detached driver that asks, submits, prunes and tells (`driver`,
`python -m paddle_hpc.search SWEEP_DIR`)."""
