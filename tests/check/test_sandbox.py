"""nnspec.check.sandbox: seeded, thread-limited runs that leave the caller's torch state alone."""

from __future__ import annotations

import torch

from nnspec.check.sandbox import seeded_sandbox
from nnspec.defaults import default_experiment


def test_sandbox_seeds_from_the_spec_and_restores_the_caller_state() -> None:
    base = default_experiment()
    train = base.train.model_copy(update={"num_threads": 1})
    spec = base.model_copy(update={"seed": 7, "train": train})
    threads = torch.get_num_threads()
    before = torch.random.get_rng_state()
    with seeded_sandbox(spec):
        inside_threads = torch.get_num_threads()
        first = torch.rand(4)
    with seeded_sandbox(spec):
        second = torch.rand(4)
    assert inside_threads == 1
    assert torch.equal(first, second)  # same spec seed, same draws
    assert torch.equal(first, torch.rand(4, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.get_num_threads() == threads
