"""Hydra finds this plugin here (the `hydra_plugins` namespace): `hydra/launcher=paddle_hpc`.
Hydra accepts only plugin classes defined in this namespace, so the launcher is declared
here; what it does is in paddle_hpc.integrations.hydra_launcher."""

from hydra.core.config_store import ConfigStore

from paddle_hpc.integrations import hydra_launcher


class PaddleHpcLauncher(hydra_launcher.PaddleHpcLauncher):
    """paddle_hpc's launcher: Hydra's jobs as a paddle_hpc sweep (job arrays, Paddle's
    launcher on every node)."""


ConfigStore.instance().store(
    group="hydra/launcher",
    name="paddle_hpc",
    node=hydra_launcher.PaddleHpcLauncherConf,
    provider="paddle_hpc",
)
