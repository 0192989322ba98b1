"""Training sanity checks (``nnspec check``), the LR range test (``nnspec lr-find``) and the opt-in
training monitors, a training callback that ``nnspec.train`` adds (rule ids CHECK-* and MON-*,
explained in ``docs/rules.md``).

Names are imported lazily so that importing one piece (``nnspec.train`` imports the monitors and
the LR range test) does not load the others.

Example:
    >>> from nnspec.check import run_checks, lr_find  # doctest: +SKIP
    >>> run_checks(nnspec.load("examples/digits_cnn.yaml")).ok  # doctest: +SKIP
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnspec._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "run_checks": "nnspec.check.runner",
    "CheckReport": "nnspec.check.runner",
    "CHECKS": "nnspec.check.runner",
    "CheckResult": "nnspec.check.context",
    "CheckContext": "nnspec.check.context",
    "lr_find": "nnspec.check.lrfind",
    "lr_range_test": "nnspec.check.lrfind",
    "LRFindResult": "nnspec.check.lrfind",
    "resolve_auto_lr": "nnspec.check.lrfind",
    "TrainingMonitor": "nnspec.check.monitors",
    "make_monitor": "nnspec.check.monitors",
    "diagnose_fit": "nnspec.check.monitors",
    "data_stats": "nnspec.check.stats",
}

__all__ = list(_EXPORTS)


if not TYPE_CHECKING:  # type checkers read the imports below, not an Any-typed __getattr__
    __getattr__, __dir__ = lazy_exports("nnspec.check", _EXPORTS)
