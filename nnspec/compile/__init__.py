"""The compiler: spec -> shapes (pure Python) -> ``nn.Module`` (pure: no I/O, no global RNG).

Names are imported lazily (PEP 562) so ``from nnspec.compile import infer_shapes`` and the init
tables do not import torch; ``build_model`` and ``register_layer`` do.

Example:
    >>> from nnspec.compile import build_model, infer_shapes  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from nnspec._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "infer_shapes": "nnspec.compile.shapes",
    "LayerInfo": "nnspec.compile.infer",
    "SHAPE_FNS": "nnspec.compile.infer",
    "walk_layers": "nnspec.compile.infer",
    "DEFAULT_INIT": "nnspec.compile.rules",
    "PRESETS": "nnspec.compile.rules",
    "resolve_init": "nnspec.compile.rules",
    "WeightSettings": "nnspec.compile.settings",
    "resolve_weight": "nnspec.compile.settings",
    "build_model": "nnspec.compile.model",
    "NNSpecModel": "nnspec.compile.model",
    "InitRecord": "nnspec.compile.initialize",
    "LAYER_BUILDERS": "nnspec.compile.layers",
    "ACTIVATION_BUILDERS": "nnspec.compile.layers",
    "register_layer": "nnspec.compile.custom",
    "unregister_layer": "nnspec.compile.custom",
    # the training plan (nnspec/compile/plan.py, issue 3)
    "compile_plan": "nnspec.compile.plan",
    "compile": "nnspec.compile.plan",
    "TrainingPlan": "nnspec.compile.plan",
    "Compiled": "nnspec.compile.plan",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports("nnspec.compile", _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover
    import torch

    from nnspec.compile.custom import register_layer, unregister_layer  # noqa: F401
    from nnspec.compile.infer import SHAPE_FNS, LayerInfo, walk_layers  # noqa: F401
    from nnspec.compile.initialize import InitRecord  # noqa: F401
    from nnspec.compile.layers import ACTIVATION_BUILDERS, LAYER_BUILDERS  # noqa: F401
    from nnspec.compile.model import NNSpecModel, build_model  # noqa: F401
    from nnspec.compile.plan import Compiled
    from nnspec.compile.rules import DEFAULT_INIT, PRESETS, resolve_init  # noqa: F401
    from nnspec.compile.settings import WeightSettings, resolve_weight  # noqa: F401
    from nnspec.compile.shapes import infer_shapes  # noqa: F401
    from nnspec.spec.experiment import ExperimentSpec


class _CallableModule(types.ModuleType):
    """``nnspec.compile(spec)`` must work even after ``import nnspec.compile``: the import system
    then binds the attribute ``nnspec.compile`` to this package, so the package itself is made
    callable and delegates to :func:`nnspec.compile.plan.compile` (issue 3)."""

    def __call__(
        self, spec: ExperimentSpec, *, generator: torch.Generator | None = None
    ) -> Compiled:
        from nnspec.compile.plan import compile as compile_experiment

        return compile_experiment(spec, generator=generator)


sys.modules[__name__].__class__ = _CallableModule
