"""From configs and overrides to runs: composing with Hydra (`config`), expanding the
sweep grammar (`grid`, `points`), the plan of runs and resource shapes (`build`), and
adding points to an existing sweep (`extend`). Submits nothing."""
