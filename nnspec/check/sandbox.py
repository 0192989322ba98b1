"""The torch settings a check or LR range test runs under, restored afterwards.

Checks build models with explicit generators, but dropout masks and batch order still draw from
the global RNG: it is forked and seeded from the spec so results repeat and the caller's RNG state
is untouched. The thread count is set as the trainer sets it, then restored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from nnspec.spec.experiment import ExperimentSpec

__all__ = ["seeded_sandbox"]


@contextmanager
def seeded_sandbox(spec: ExperimentSpec) -> Iterator[None]:
    """Run the body with ``spec.train.num_threads`` and a forked global RNG seeded ``spec.seed``.

    Example:
        >>> from nnspec.defaults import default_experiment
        >>> before = torch.random.get_rng_state()
        >>> with seeded_sandbox(default_experiment()):
        ...     _ = torch.rand(3)
        >>> bool(torch.equal(before, torch.random.get_rng_state()))
        True
    """
    threads = torch.get_num_threads()
    try:
        if spec.train.num_threads is not None:  # as the trainer does
            torch.set_num_threads(spec.train.num_threads)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            yield
    finally:
        torch.set_num_threads(threads)
