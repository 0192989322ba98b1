"""nnspec list [KIND] [--plugins MODULE]

List what a spec can name: layer kinds, activations, init presets, optimizers, LR schedules,
losses, metrics, data sources, callbacks and trackers, and the config groups' options
(group=option on the command line). Names that user code registered (a plugin: --plugins MODULE,
or an installed package's nnspec.plugins entry point) are listed too, marked "(registered)". KIND
is one of layers, activations, init, optimizers, schedules, losses, metrics, data, callbacks,
trackers, groups; without it, everything is listed.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from nnspec.cli.common import EXIT_OK
from nnspec.registry import Registry

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


def _registered(table: Registry[Any]) -> Rows:
    """A table's names, user-registered ones marked, with their class's first doc line."""
    return [
        (name, ("(registered) " if not table.is_builtin(name) else "") + _first_line(value))
        for name, value in table.items()
    ]


def _optimizers() -> Rows:
    from nnspec.spec.optim import OPTIM_SPECS

    return _registered(OPTIM_SPECS)


def _schedules() -> Rows:
    from nnspec.spec.schedule import SCHEDULE_SPECS

    return _registered(SCHEDULE_SPECS)


def _losses() -> Rows:
    from nnspec.spec.optim import LOSS_SPECS, LOSS_TASKS

    return [
        (kind, ("(registered) " if not LOSS_SPECS.is_builtin(kind) else "")
         + (", ".join(sorted(LOSS_TASKS[kind])) if kind in LOSS_TASKS else "from the task"))
        for kind in LOSS_SPECS
    ]  # fmt: skip


def _data() -> Rows:
    from nnspec.spec.data import SOURCE_NAMES

    rows = [(f"sklearn:{name}", "bundled with scikit-learn") for name in SOURCE_NAMES["sklearn"]]
    rows += [(f"synthetic:{kind}", "generated from the seed") for kind in SOURCE_NAMES["synthetic"]]
    files = [p for p in SOURCE_NAMES if SOURCE_NAMES.is_builtin(p) and SOURCE_NAMES[p] is None]
    rows += [(f"{p}:PATH", f"a .{p} file") for p in files]
    return rows + [(f"{p}[:ARG]", "(registered)") for p in SOURCE_NAMES.user_names()]


def _callbacks() -> Rows:
    from nnspec.spec.callbacks import CALLBACK_SPECS

    return _registered(CALLBACK_SPECS) or [("(none)", "register one: nnspec.register_callback")]


def _trackers() -> Rows:
    from nnspec.spec.callbacks import TRACKERS

    return [(name, f"needs: {install}") for name, install in TRACKERS.items()]


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
    "metrics": _metrics,
    "data": _data,
    "callbacks": _callbacks,
    "trackers": _trackers,
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
