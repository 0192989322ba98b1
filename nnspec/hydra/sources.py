"""Where composition finds its configs: the user's folders first, then nnspec's ``conf/``.

The user's folders come from ``--config-dir`` and ``hydra.searchpath=[...]`` (command line); their
options join every group of nnspec's, and an option named like one of nnspec's wins, because the
user's folders come first in Hydra's search path. A user's spec file becomes the primary config
as a node of Hydra's ConfigStore (no temporary files): nnspec never writes a config to disk to
compose it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

__all__ = ["CONF_MODULE", "PRIMARY", "SPEC_PRIMARY", "GROUP_NAMES", "Sources", "session"]

CONF_MODULE = "nnspec.conf"
PRIMARY = "config"
SPEC_PRIMARY = "nnspec_spec"
NNSPEC_PRIMARY = "nnspec_config"  # nnspec's config.yaml, in the ConfigStore
# Config groups a user selects with `group=option` (no `+` needed: each has a defaults entry).
GROUP_NAMES: tuple[str, ...] = (
    "data",
    "model",
    "optim",
    "schedule",
    "train",
    "experiment",
    "sweep",
)
_FILE, _PKG = "file://", "pkg://"
NNSPEC_ENTRY = f"{_PKG}{CONF_MODULE}"


@dataclass(frozen=True)
class Sources:
    """The user's search-path entries (``file://DIR`` or ``pkg://module``), first wins."""

    user: tuple[str, ...] = ()

    @classmethod
    def of(cls, config_dir: str | Path | None = None, searchpath: Sequence[str] = ()) -> Sources:
        """``--config-dir`` then the entries of a ``hydra.searchpath`` override (a plain folder
        is read as ``file://``); nnspec's own entry is dropped (it always comes last)."""
        raw = [*([str(config_dir)] if config_dir else []), *searchpath]
        entries = [e if e.startswith((_FILE, _PKG)) else _FILE + e for e in raw]
        entries = [_FILE + str(Path(e[len(_FILE):]).resolve()) if e.startswith(_FILE) else e
                   for e in entries]  # fmt: skip
        return cls(tuple(dict.fromkeys(e for e in entries if e != NNSPEC_ENTRY)))

    @property
    def dirs(self) -> list[Path]:
        """The user's folders on disk."""
        return [Path(e[len(_FILE) :]) for e in self.user if e.startswith(_FILE)]

    def folders(self, group: str) -> list[Traversable]:
        """``<entry>/<group>`` of every entry, the user's first, nnspec's last."""
        return [_root(e).joinpath(group) for e in (*self.user, NNSPEC_ENTRY)]

    def option_file(self, group: str, option: str) -> tuple[str, Traversable] | None:
        """The file Hydra reads for ``group=option`` (the first entry holding it) and its label:
        the path of a user's file, ``nnspec:<group>/<option>.yaml`` for a built-in one."""
        for entry in (*self.user, NNSPEC_ENTRY):
            file = _root(entry).joinpath(group).joinpath(f"{option}.yaml")
            if file.is_file():
                label = str(file) if entry.startswith(_FILE) else f"nnspec:{group}/{option}.yaml"
                return label, file
        return None

    def searchpath_override(self) -> str | None:
        """``hydra.searchpath=[...]``: the user's entries after the first, then nnspec's."""
        if not self.user:
            return None
        rest = [*self.user[1:], NNSPEC_ENTRY]
        return "hydra.searchpath=[" + ",".join(f"'{p}'" for p in rest) + "]"


def _root(entry: str) -> Traversable:
    if entry.startswith(_FILE):
        return Path(entry[len(_FILE) :])
    return resources.files(entry[len(_PKG) :])


def spec_primary(data: Mapping[str, Any], groups: Mapping[str, str]) -> dict[str, Any]:
    """The primary config of a user's spec: its data plus null group defaults.

    ``_self_`` comes first, so a group chosen on the command line replaces the spec's section,
    which is removed from the data first (a different optimizer kind must not inherit the old
    one's fields).
    """
    from_groups = set(groups) | ({"task"} if "data" in groups else set())
    kept = {k: v for k, v in data.items() if k not in from_groups}
    defaults: list[Any] = ["nnspec_hydra", "_self_", *({g: None} for g in GROUP_NAMES)]
    return {"defaults": defaults, **kept}


@contextlib.contextmanager
def session(
    sources: Sources, spec_data: Mapping[str, Any] | None = None,
    groups: Mapping[str, str] | None = None, *, config_name: str | None = None,
    job_name: str = "app",
) -> Iterator[str]:  # fmt: skip
    """Initialise Hydra for one composition or run; yields the primary config's name.

    The first of the user's entries is Hydra's main config folder and the others follow it (the
    caller adds :meth:`Sources.searchpath_override` to its overrides), so a user's option wins
    over nnspec's of the same name. ``spec_data`` (a spec's canonical data) is stored in Hydra's
    ConfigStore as the primary config; nnspec's own primary is stored there too when the user's
    folder is the main one. Yields the primary config's name: the spec's, else the caller's
    ``config_name`` (``--config-name``), else nnspec's.
    """
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.config_store import ConfigStore

    # `hydra/sweeper: nnspec_optuna` and `hydra/launcher: nnspec_pool` must be in the ConfigStore
    import nnspec.hydra.plugins  # noqa: F401

    name = config_name or PRIMARY
    if spec_data is not None:
        ConfigStore.instance().store(name=SPEC_PRIMARY, node=spec_primary(spec_data, groups or {}))
        name = SPEC_PRIMARY
    elif sources.user and config_name is None:
        # Hydra looks for the primary config before it reads `hydra.searchpath`: with the user's
        # folder as the main one, nnspec's primary is found in the ConfigStore.
        from omegaconf import OmegaConf

        text = resources.files(CONF_MODULE).joinpath(f"{PRIMARY}.yaml").read_text("utf-8")
        ConfigStore.instance().store(name=NNSPEC_PRIMARY, node=OmegaConf.create(text))
        name = NNSPEC_PRIMARY
    first = sources.user[0] if sources.user else NNSPEC_ENTRY
    if first.startswith(_FILE):
        init: Any = initialize_config_dir(
            first[len(_FILE) :], job_name=job_name, version_base="1.3"
        )
    else:
        init = initialize_config_module(first[len(_PKG) :], job_name=job_name, version_base="1.3")
    with init:
        yield name
