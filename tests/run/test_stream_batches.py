"""The batch design: mappings of named tensors, (seed, epoch) order, rank shares."""

from __future__ import annotations

import torch

from nnspec.run.batches import INPUT, TARGET, EpochBatches, epoch_order, model_inputs
from nnspec.run.data import Split


def _positions(sampler: EpochBatches) -> list[list[int]]:
    return [list(b) for b in sampler]


def test_ranks_together_see_the_single_process_batches() -> None:
    one = EpochBatches(106, 10, seed=3, shuffle=True)
    one.set_epoch(2)
    single = _positions(one)
    assert single[0] == epoch_order(3, 2, 106)[:10].tolist()
    shares = []
    for rank in range(3):
        s = EpochBatches(106, 10, seed=3, shuffle=True, rank=rank, world_size=3)
        s.set_epoch(2)
        shares.append(_positions(s))
    assert all(len(s) == len(single) for s in shares)
    for i, batch in enumerate(single):
        merged = sorted(p for rank in range(3) for p in shares[rank][i])
        assert merged == sorted(batch)  # no sample twice, none left out


def test_a_last_batch_too_small_for_every_rank_is_dropped() -> None:
    assert [len(b) for b in EpochBatches(21, 10, seed=0, shuffle=False)] == [10, 10]
    assert [len(b) for b in EpochBatches(22, 10, seed=0, shuffle=False)] == [10, 10, 2]
    two = EpochBatches(23, 10, seed=0, shuffle=False, rank=1, world_size=2)
    assert [len(b) for b in two] == [5, 5]  # 3 left: one rank would get a single sample
    keep = EpochBatches(21, 10, seed=0, shuffle=False, drop_last_single=False)
    assert [len(b) for b in keep] == [10, 10, 1]


def test_in_memory_rank_shares_are_the_sampler_positions() -> None:
    x, y = torch.arange(40.0).reshape(20, 2), torch.arange(20)
    sampler = EpochBatches(20, 8, seed=1, shuffle=True, rank=1, world_size=2)
    sampler.set_epoch(5)
    batches = list(Split(x, y).batches(sampler, torch.device("cpu")))
    for batch, positions in zip(batches, sampler, strict=True):
        assert torch.equal(batch[TARGET], y[positions])
        assert torch.equal(model_inputs(batch, (INPUT,)), x[positions])
    named = model_inputs({"a": x, "b": y, TARGET: y}, ("a", "b"))
    assert set(named) == {"a", "b"}
