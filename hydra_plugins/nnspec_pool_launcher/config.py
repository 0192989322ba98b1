"""Structured config of the launcher, registered as ``hydra/launcher: nnspec_pool``."""

# No `from __future__ import annotations`: Hydra's plugin scan executes this module without
# registering it in sys.modules, and dataclasses then cannot resolve string annotations.
from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

# what a trial imports the first time it trains; nnspec._heap imports nothing heavy
from nnspec._heap import TRAINING_STACK

__all__ = ["NNSpecPoolLauncherConf"]


@dataclass
class NNSpecPoolLauncherConf:
    """Settings of ``hydra/launcher=nnspec_pool`` (all overridable as ``hydra.launcher.X=...``)."""

    _target_: str = "hydra_plugins.nnspec_pool_launcher.launcher.NNSpecPoolLauncher"
    # trials run at once; -1 = one per available core, -2 = all but one (joblib's convention)
    n_jobs: int = -1
    # fork (default on Linux), forkserver (default elsewhere) or spawn
    start_method: str | None = None
    # modules imported once before the first trial (fork: by this process; forkserver: by the
    # server), so each trial starts with them loaded
    preload: list[str] = field(default_factory=lambda: list(TRAINING_STACK))


ConfigStore.instance().store(
    group="hydra/launcher", name="nnspec_pool", node=NNSpecPoolLauncherConf, provider="nnspec"
)
