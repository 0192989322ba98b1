"""Defaults of the LR range test (LR-3), torch-free.

``nnspec lr-find`` builds its argument parser from them before anything heavy is imported (its
arguments are checked first; see nnspec._heap).
"""

from __future__ import annotations

from typing import Final

__all__ = ["START", "END", "STEPS"]

START: Final = 1e-6  # first learning rate of the sweep
END: Final = 10.0  # last learning rate
STEPS: Final = 100  # one per batch
