"""Warm start for processes nnspec owns: import the training stack once, then freeze the heap.

Used by the ``nnspec`` console script (before a command runs) and by the ``nnspec_pool`` sweep
launcher (before it forks trials); never at library import, since freezing changes the whole
process's garbage collection and is the owner's decision.

Why: CPython's collector walks every tracked object on a full pass. torch alone leaves ~180,000 of
them; with scikit-learn, Hydra and matplotlib it is over 400,000, and importing them one after the
other runs seven full passes (0.73-0.78 s of ``nnspec train`` on the default experiment, measured
2026-12-05 with ``gc.callbacks``). Module imports create next to no cyclic garbage (those seven
passes freed a few hundred objects), so the imports run with the collector paused, and the objects
they leave (module globals, classes, functions: alive until exit anyway) are moved to the
permanent generation (:func:`gc.freeze`). Later passes see only what the run itself allocates.
Before a fork this is also Python's documented advice: children's collections no longer write to
the parent's pages, which stay shared.
"""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import Iterable

__all__ = ["PLOT_STACK", "TORCH_STACK", "TRAINING_STACK", "preload"]

log = logging.getLogger(__name__)

# What a training run imports before its first epoch ends: nnspec's trainer, torch._dynamo (torch
# imports it at the first optimizer construction), and scikit-learn's data sets, splits and metrics;
# then matplotlib's Agg backend for the run's plots.
TORCH_STACK: tuple[str, ...] = (
    "nnspec.run",
    "torch._dynamo",
    "sklearn.datasets",
    "sklearn.model_selection",
    "sklearn.metrics",
)
PLOT_STACK: tuple[str, ...] = ("matplotlib.figure", "matplotlib.backends.backend_agg")
TRAINING_STACK: tuple[str, ...] = TORCH_STACK + PLOT_STACK


def preload(modules: Iterable[str], *, what: str = "preload") -> None:
    """Import ``modules`` with the collector paused, then freeze every object alive.

    A module that cannot be imported is logged (``what`` names the setting in the message) and
    skipped: it only costs the warm start. The collector's enabled state is restored.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError as e:
                log.warning("%s: cannot import %s (%s)", what, name, e)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
