"""Hydra composition and sweeps: a thin adapter from composed YAML to validated specs.

Hydra itself is imported only inside the functions that need it, so ``import nnspec`` stays light.
"""

from nnspec.hydra.compose import compose

__all__ = ["compose"]
