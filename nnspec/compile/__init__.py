"""The compiler: spec -> shapes (pure Python) -> ``nn.Module`` (pure: no I/O, no global RNG).

Names are imported lazily (PEP 562) so ``from nnspec.compile import infer_shapes`` and the init
tables do not import torch; ``build_model`` and ``register_layer`` do.

Example:
    >>> from nnspec.compile import build_model, infer_shapes  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnspec._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "infer_shapes": "nnspec.compile.inference",
    "LayerInfo": "nnspec.compile.infer",
    "SHAPE_FNS": "nnspec.compile.infer",
    "walk_layers": "nnspec.compile.infer",
    "DEFAULT_INIT": "nnspec.compile.rules",
    "PRESETS": "nnspec.compile.rules",
    "resolve_init": "nnspec.compile.rules",
    "WeightSettings": "nnspec.compile.settings",
    "resolve_weight": "nnspec.compile.settings",
    "build_model": "nnspec.compile.model",
    "NNSpecModel": "nnspec.compile.network",
    "GraphModel": "nnspec.compile.network",
    "InitRecord": "nnspec.compile.initialize",
    "LAYER_BUILDERS": "nnspec.compile.layers",
    "ACTIVATION_BUILDERS": "nnspec.compile.layers",
    "register_layer": "nnspec.compile.custom",
    "unregister_layer": "nnspec.compile.custom",
    # the training plan, and the model with it (``nnspec.compile`` at the top level)
    "compile_plan": "nnspec.compile.plan",
    "compile_spec": "nnspec.compile.plan",
    "TrainingPlan": "nnspec.compile.plan",
    "Compiled": "nnspec.compile.plan",
}

__all__ = list(_EXPORTS)


if not TYPE_CHECKING:  # type checkers read the imports below, not an Any-typed __getattr__
    __getattr__, __dir__ = lazy_exports("nnspec.compile", _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover
    from nnspec.compile.custom import register_layer, unregister_layer  # noqa: F401
    from nnspec.compile.infer import SHAPE_FNS, LayerInfo, walk_layers  # noqa: F401
    from nnspec.compile.inference import infer_shapes  # noqa: F401
    from nnspec.compile.initialize import InitRecord  # noqa: F401
    from nnspec.compile.layers import ACTIVATION_BUILDERS, LAYER_BUILDERS  # noqa: F401
    from nnspec.compile.model import build_model  # noqa: F401
    from nnspec.compile.network import GraphModel, NNSpecModel  # noqa: F401
    from nnspec.compile.plan import Compiled, TrainingPlan, compile_plan, compile_spec  # noqa: F401
    from nnspec.compile.rules import DEFAULT_INIT, PRESETS, resolve_init  # noqa: F401
    from nnspec.compile.settings import WeightSettings, resolve_weight  # noqa: F401
