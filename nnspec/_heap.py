"""Warm start for processes nnspec's console script owns: heavy imports, then a frozen heap.

CPython's collector walks every tracked object on a full pass, and runs one each time the objects
that survived the last pass have grown by a quarter. torch, scikit-learn, Hydra and matplotlib
leave hundreds of thousands of them, and importing them one after the other runs several full
passes (``docs/benchmarks.md`` has the figures). :func:`warm` imports what a command needs with
full passes held off (young collections still run and free the imports' short-lived garbage), then
moves the objects left (module globals, classes, functions: alive until exit anyway) to the
permanent generation with :func:`gc.freeze`; later passes see only what the run itself allocates.
Before a fork this is also Python's documented advice: the children's collections no longer write
to the parent's pages.

Freezing is the process owner's decision, so it happens only after :func:`own_process` (called by
``nnspec.cli.main.entry``, the console script and ``python -m nnspec``; inherited by processes
forked from it) and at most once per process. Anywhere else (``import nnspec`` in a notebook or a
test session, a loky worker) :func:`warm` only imports. ``NNSPEC_WARM_START=0`` turns the warm
start off (``bench/bench_startup.py`` compares both).

This module names no module to import: its callers pass their lists (each command's is in
``nnspec.cli.common.PRELOAD``), so the import arrows stay with the code that owns them.

Holding full passes off relies on a generational collector whose full passes wait for the third
threshold (CPython 3.11-3.13); where the collector ignores that threshold (3.14's incremental one)
only the freeze remains.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
from collections.abc import Iterable

__all__ = ["WARM_START_ENV", "own_process", "warm"]

log = logging.getLogger(__name__)

WARM_START_ENV = "NNSPEC_WARM_START"

_owned = False
_frozen = False


def own_process() -> None:
    """Mark this process as the console script's: :func:`warm` may then freeze its heap.

    ``NNSPEC_WARM_START=0`` in the environment leaves the process unmarked.
    """
    global _owned
    _owned = os.environ.get(WARM_START_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def warm(modules: Iterable[str], *, what: str) -> None:
    """Import ``modules``; in an owned process, with full collections held off and, the first
    time, the heap frozen afterwards.

    A module that fails to import is logged (``what`` names the setting or command) and skipped:
    it only costs the warm start, and the code that needs it reports the failure in its own words.
    """
    global _frozen
    hold = _owned and not _frozen
    thresholds = gc.get_threshold()
    if hold:  # young collections go on; the generation-2 count can never reach this threshold
        _frozen = True  # a warm() reached through one of these imports only imports
        gc.set_threshold(thresholds[0], thresholds[1], 2**31 - 1)
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception as e:  # any failure only costs the warm start (docstring)
                log.warning("%s: cannot import %s (%s: %s)", what, name, type(e).__name__, e)
    finally:
        if hold:
            gc.set_threshold(*thresholds)
            gc.freeze()
