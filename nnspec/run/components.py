"""User-registered data sources and callbacks (``nnspec.register_source``,
``nnspec.register_callback``), and the spec's callbacks built for a run.

A data source is a prefix of ``data.source``: ``register_source("survey", load)`` makes
``source: survey`` and ``source: survey:ARG`` valid, and the run calls ``load(ARG, seed=SEED)``
(``ARG`` is ``""`` without a colon), which returns ``(x, y)`` arrays or tensors (or
``{"x": ..., "y": ...}``), the same as data passed to :func:`nnspec.train`. The samples are then
split, standardised and batched like any other source.

A callback is a :class:`~nnspec.run.callbacks.Callback` factory: ``register_callback("stop_at",
StopAt, StopAtSpec)`` makes ``train.callbacks: [{kind: stop_at, epoch: 3}]`` valid, and each run
calls ``StopAt(epoch=3)``. Spec-named callbacks run after nnspec's own and before those passed to
``nnspec.train(callbacks=...)``.

Example:
    >>> import numpy as np
    >>> def ramp(arg: str, *, seed: int):
    ...     x = np.linspace(0, 1, 50, dtype=np.float32)[:, None]
    ...     return x, (x[:, 0] > 0.5).astype(np.int64)
    >>> _ = register_source("doc_ramp", ramp)
    >>> unregister("source", "doc_ramp")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from nnspec.errors import DataError, Problem
from nnspec.registry import Registry, RegistryError, check_name
from nnspec.run.arrays import RawData
from nnspec.run.callbacks import Callback
from nnspec.run.data import user_data
from nnspec.run.sources import SOURCES
from nnspec.spec.callbacks import CALLBACK_SPECS, CallbackBase
from nnspec.spec.data import SOURCE_NAMES, DataSpec
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["register_source", "register_callback", "unregister", "spec_callbacks"]

SourceLoader = Callable[..., Any]
CALLBACK_FACTORIES: Registry[Callable[..., Callback]] = Registry("callback")
CALLBACK_FACTORIES.seal()


def _free(name: str, tables: tuple[Registry[Any], ...], what: str) -> None:
    for table in tables:  # all checked first: a registration is all or nothing
        if name in table:
            builtin = " (built in)" if table.is_builtin(name) else ""
            raise RegistryError(
                f"{what} '{name}' is already registered{builtin}; choose another name"
            )


def register_source(prefix: str, loader: SourceLoader) -> SourceLoader:
    """Add a data source usable as ``data.source: <prefix>`` or ``<prefix>:ARG``.

    Args:
        prefix: the name before the colon (snake_case).
        loader: ``loader(arg, *, seed)`` -> ``(x, y)`` arrays or tensors.

    Raises:
        RegistryError: the prefix is taken (``csv``, ``sklearn``, ...) or not snake_case.
    """
    check_name(prefix, "data source")
    _free(prefix, (SOURCE_NAMES, SOURCES), "data source")

    def load(arg: str, spec: DataSpec, seed: int, base: Path | None) -> RawData:
        try:
            raw = user_data(loader(arg, seed=seed))
        except DataError:
            raise
        except Exception as e:  # the user's loader failed: say which source, keep the cause
            raise DataError(
                Problem(
                    ("data", "source"),
                    f"data source '{prefix}' failed: {type(e).__name__}: {e}",
                    found=spec.source,
                )
            ) from e
        if not isinstance(raw, RawData):
            message = f"data source '{prefix}' must return (x, y) arrays"
            raise DataError(Problem(("data", "source"), message, found=type(raw).__name__))
        return raw

    SOURCE_NAMES.register(prefix, None)
    SOURCES.register(prefix, load)
    return loader


def register_callback(
    name: str, factory: Callable[..., Callback], spec: type[CallbackBase] | None = None
) -> Callable[..., Callback]:
    """Add a callback usable as ``train.callbacks: [<name>]`` or ``[{kind: <name>, ...}]``.

    Args:
        name: the YAML name (snake_case).
        factory: ``factory(**fields)`` -> a :class:`Callback` (a Callback subclass fits).
        spec: its spec class (a ``CallbackBase`` subclass whose fields are the factory's
            keywords); default: no fields besides ``kind``.
    """
    from nnspec.compile.components import spec_class

    cls = spec_class(name, CallbackBase, spec, "callback")
    _free(name, (CALLBACK_SPECS, CALLBACK_FACTORIES), "callback")
    CALLBACK_SPECS.register(name, cls)
    CALLBACK_FACTORIES.register(name, factory)
    return factory


def unregister(what: Literal["source", "callback"], name: str) -> None:
    """Remove a user-registered data source or callback (tests, notebooks)."""
    tables = (SOURCE_NAMES, SOURCES) if what == "source" else (CALLBACK_SPECS, CALLBACK_FACTORIES)
    for table in tables:
        table.unregister(name)


def spec_callbacks(spec: ExperimentSpec) -> list[Callback]:
    """The callbacks ``train.callbacks`` names, built for one run (in the spec's order)."""
    built: list[Callback] = []
    for item in spec.train.callbacks:
        fields = item.model_dump(exclude={"kind"})
        callback = CALLBACK_FACTORIES[item.kind](**fields)
        if not isinstance(callback, Callback):
            raise TypeError(
                f"callback '{item.kind}': its factory returned {type(callback).__name__}, not a "
                "nnspec Callback; fix: register a Callback subclass or a function returning one"
            )
        built.append(callback)
    return built
