"""Run layer: the only part of nnspec with side effects (data loading, the loop, files).

Public API: :func:`fit` -> :class:`RunResult` (a validated spec and callbacks; ``nnspec.train`` in
:mod:`nnspec.workflow` adds ``lr: auto``, lint and the monitors), :class:`Callback` and the
:class:`FitState` it receives, :func:`load_run` -> :class:`Predictor`.
Imported lazily so ``import nnspec.run`` stays cheap until a run starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["fit", "RunResult", "Callback", "FitState", "load_run", "Predictor", "evaluate_run"]

_EXPORTS = {
    "fit": "nnspec.run.api",
    "Callback": "nnspec.run.callbacks",
    "FitState": "nnspec.run.callbacks",
    "RunResult": "nnspec.run.api",
    "load_run": "nnspec.run.predict",
    "Predictor": "nnspec.run.predict",
    "evaluate_run": "nnspec.run.predict",
}


if not TYPE_CHECKING:  # hidden from type checkers, which would type every unknown name as Any

    def __getattr__(name: str) -> Any:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module 'nnspec.run' has no attribute '{name}'")
        return getattr(importlib.import_module(module), name)

else:  # what __getattr__ returns, for type checkers
    from nnspec.run.api import RunResult as RunResult
    from nnspec.run.api import fit as fit
    from nnspec.run.callbacks import Callback as Callback
    from nnspec.run.callbacks import FitState as FitState
    from nnspec.run.predict import Predictor as Predictor
    from nnspec.run.predict import evaluate_run as evaluate_run
    from nnspec.run.predict import load_run as load_run
