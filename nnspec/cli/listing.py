"""nnspec list [KIND]

List what a spec can name: layer kinds (built in and registered by imported code), activations,
init presets, optimizers, LR schedules, losses, data sources, metrics (tasks, direction; user
metrics marked registered), and the config groups' options (group=option on the command line).
KIND is one of layers, activations, init, optimizers, schedules, losses, data, metrics, groups;
without it, everything is listed.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, get_args

from nnspec.cli.common import EXIT_OK

__all__ = ["run", "LISTERS"]

Rows = list[tuple[str, str]]


def _first_line(cls: Any) -> str:
    doc = (cls.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def _layers() -> Rows:
    import nnspec.spec.experiment  # noqa: F401  (registers the block, graph and sequence kinds)
    from nnspec.spec.layers import LAYER_SPECS

    return [(kind, _first_line(cls)) for kind, cls in LAYER_SPECS.items()]


def _activations() -> Rows:
    from nnspec.spec.activations import ACTIVATION_NAMES

    return [(name, "") for name in ACTIVATION_NAMES]


def _init() -> Rows:
    from nnspec.spec.init import INIT_PRESETS

    return [(name, "") for name in INIT_PRESETS]


def _optimizers() -> Rows:
    from nnspec.spec.optim import OPTIM_CLASSES

    return [(kind, _first_line(cls)) for kind, cls in OPTIM_CLASSES.items()]


def _schedules() -> Rows:
    from nnspec.spec.schedule import SCHEDULE_CLASSES

    return [(kind, _first_line(cls)) for kind, cls in SCHEDULE_CLASSES.items()]


def _losses() -> Rows:
    from nnspec.spec.optim import LossKind

    return [(kind, "") for kind in get_args(LossKind)]


def _data() -> Rows:
    from nnspec.run.sources import SKLEARN_SETS, SOURCES, SYNTHETIC

    rows = [(f"sklearn:{name}", "bundled with scikit-learn") for name in SKLEARN_SETS]
    rows += [(f"synthetic:{kind}", "generated from the seed") for kind in SYNTHETIC]
    files = [p for p in SOURCES if p not in ("sklearn", "synthetic")]
    return rows + [(f"{p}:PATH", f"a .{p} file") for p in files]


def _groups() -> Rows:
    from nnspec.hydra.compose import GROUP_NAMES
    from nnspec.hydra.groups import group_options

    return [(group, ", ".join(group_options(group))) for group in GROUP_NAMES]


def _metrics() -> Rows:
    from nnspec.spec.metrics import metric_rows

    return metric_rows()


LISTERS: Mapping[str, Callable[[], Rows]] = MappingProxyType({
    "layers": _layers,
    "activations": _activations,
    "init": _init,
    "optimizers": _optimizers,
    "schedules": _schedules,
    "losses": _losses,
    "data": _data,
    "metrics": _metrics,
    "groups": _groups,
})  # fmt: skip


def _print(kind: str, rows: Rows) -> None:
    width = max(len(name) for name, _ in rows)
    for name, text in rows:
        print(f"  {name:<{width}}  {text}".rstrip())


def run(args: Namespace) -> int:
    """``nnspec list [KIND]``: one section per kind, one line per name."""
    kinds = [args.kind] if args.kind else list(LISTERS)
    for i, kind in enumerate(kinds):
        if len(kinds) > 1:
            print(("\n" if i else "") + f"{kind}:")
        _print(kind, LISTERS[kind]())
    return EXIT_OK
