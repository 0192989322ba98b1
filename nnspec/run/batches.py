"""Batches as mappings of named tensors, and the order of an epoch.

A **batch** is a ``Mapping[str, torch.Tensor]`` whose tensors share their first (batch)
dimension:

- the model's inputs under the names the model gives them: a model with one ``input_shape`` has
  one input, named ``"input"`` (:data:`INPUT`, the name the graph compiler uses too); a model
  with ``inputs:`` gets one key per input name;
- the encoded targets under ``"target"`` (:data:`TARGET`) for a model with one output, under
  ``"target.<output>"`` (:func:`target_key`) for each output of a model with several.

:func:`model_inputs` turns a batch into what the model's ``forward`` takes.

**Order.** :func:`epoch_order` is the permutation of an epoch: a pure function of
``(seed, epoch)``, never of process RNG state, so a resumed run replays the same batches.
:class:`EpochBatches` cuts it into *global* batches of ``batch_size`` samples and yields this
process's share of each: rank ``r`` of ``world_size`` takes ``global_batch[r::world_size]``.
Together the ranks see exactly the batches of a single-process run, whatever ``world_size`` is.
It is a batch sampler (``torch.utils.data.DataLoader(..., batch_sampler=...)``); call
:meth:`EpochBatches.set_epoch` before each epoch, as with ``DistributedSampler``. DataLoader
workers then split the sampler's batches between them (batch ``i`` goes to worker
``i % num_workers``), so a map-style source needs no per-worker sharding; iterable sources shard
by rank and worker with :func:`shard_of`.

A last global batch too small to give every rank two samples is dropped (batch norm cannot train
on one sample): with one process, that is a last batch of one sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import torch

__all__ = [
    "Batch",
    "Split",
    "SeededEpochs",
    "INPUT",
    "TARGET",
    "EpochBatches",
    "epoch_order",
    "model_inputs",
    "shard_of",
    "target_key",
    "batch_targets",
    "batch_len",
]

Batch = Mapping[str, torch.Tensor]
INPUT: Final = "input"  # the one input of a model declared with input_shape
TARGET: Final = "target"  # the encoded targets of a model with one output


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The training order of ``epoch``: a permutation that depends only on (seed, epoch).

    Example:
        >>> bool((epoch_order(0, 3, 10) == epoch_order(0, 3, 10)).all())
        True
    """
    mixed = int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0])
    gen = torch.Generator().manual_seed(mixed & 0x7FFF_FFFF_FFFF_FFFF)
    return torch.randperm(n, generator=gen)


class EpochBatches(torch.utils.data.Sampler[list[int]]):
    """This process's share of each global batch of an epoch, as sample positions.

    Args:
        n: samples in the split.
        batch_size: samples per global batch (all ranks together).
        seed: the experiment seed; with ``shuffle`` the order is ``epoch_order(seed, epoch, n)``.
        shuffle: False: positions in split order (evaluation).
        rank, world_size: this process and the number of processes sharing each batch.
        drop_last_single: drop a last global batch too small for every rank to get two samples
            (training); False keeps every sample (evaluation).

    Example:
        >>> s = EpochBatches(12, 4, seed=0, shuffle=False, rank=1, world_size=2)
        >>> list(s)  # rank 1's share of the global batches [0..3], [4..7], [8..11]
        [[1, 3], [5, 7], [9, 11]]
        >>> len(EpochBatches(9, 4, seed=0, shuffle=False))  # 4 + 4 + a last batch of one: dropped
        2
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        seed: int,
        shuffle: bool,
        rank: int = 0,
        world_size: int = 1,
        drop_last_single: bool = True,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        last = n % batch_size
        small = drop_last_single and n > batch_size and 0 < last < 2 * world_size
        self.stop = n - last if small else n  # samples used per epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` from the next iteration on."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.stop // self.batch_size)

    def order(self) -> torch.Tensor:
        """The positions of this epoch, all ranks (``epoch_order``, or ``0..n-1``)."""
        if self.shuffle:
            return epoch_order(self.seed, self.epoch, self.n)
        return torch.arange(self.n)

    def local(self) -> tuple[torch.Tensor, list[int]]:
        """This rank's positions for the epoch, batch after batch, and each batch's size."""
        order = self.order()[: self.stop]
        if self.world_size == 1:
            sizes = [
                min(self.batch_size, self.stop - i) for i in range(0, self.stop, self.batch_size)
            ]
            return order, sizes
        shares = [
            order[i : i + self.batch_size][self.rank :: self.world_size]
            for i in range(0, self.stop, self.batch_size)
        ]
        return torch.cat(shares), [len(s) for s in shares]

    def global_sizes(self) -> list[int]:
        """The size of each global batch of an epoch (all ranks together)."""
        return [min(self.batch_size, self.stop - i) for i in range(0, self.stop, self.batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        positions, sizes = self.local()
        start = 0
        for size in sizes:  # a batch's Python ints at a time: a whole epoch's would linger in
            yield positions[start : start + size].tolist()  # the training process, and the next
            start += size  # pass's forked workers would count them again (docs/benchmarks.md)


class SeededEpochs:
    """A DataLoader iterated once per epoch with its own generator, reseeded from
    ``(sampler.seed, sampler.epoch)`` before each pass: the loader's draw of the workers' base
    seed never touches the global RNG (so dropout sees the same stream streamed or in memory),
    and the workers' seeds are a function of the epoch (so a resumed run reseeds them alike)."""

    def __init__(
        self, make: Callable[[torch.Generator], Iterable[Batch]], sampler: EpochBatches
    ) -> None:
        self.generator = torch.Generator()
        self.loader, self.sampler = make(self.generator), sampler

    def __iter__(self) -> Iterator[Batch]:
        mixed = np.random.SeedSequence([self.sampler.seed, self.sampler.epoch, 1])
        self.generator.manual_seed(int(mixed.generate_state(1, dtype=np.uint64)[0] >> 1))
        return iter(self.loader)


def model_inputs(batch: Batch, names: tuple[str, ...]) -> torch.Tensor | dict[str, torch.Tensor]:
    """What the model's ``forward`` takes: the one tensor of a single-input model (``names`` is
    ``("input",)``), else a dict of the named inputs."""
    if names == (INPUT,):
        return batch[INPUT]
    return {name: batch[name] for name in names}


def target_key(output: str) -> str:
    """The batch key of an output's encoded targets (a model with several outputs)."""
    return f"{TARGET}.{output}"


def batch_targets(
    batch: Batch, outputs: tuple[str, ...] = ()
) -> torch.Tensor | dict[str, torch.Tensor]:
    """What the loss takes: the one target tensor (``outputs`` empty), else a dict of each
    output's targets."""
    if not outputs:
        return batch[TARGET]
    return {name: batch[target_key(name)] for name in outputs}


def batch_len(targets: torch.Tensor | Mapping[str, torch.Tensor]) -> int:
    """Samples in a batch, from its targets (:func:`batch_targets`)."""
    if isinstance(targets, torch.Tensor):
        return len(targets)
    return len(next(iter(targets.values())))


def shard_of(rank: int, world_size: int) -> tuple[int, int]:
    """The shard an iterable source's reader keeps in this process: ``(index, count)`` over
    every (rank, DataLoader worker) pair, so that sample ``i`` is read by the one reader with
    ``i % count == index``.

    Call it inside the DataLoader worker (``torch.utils.data.get_worker_info``).
    """
    info = torch.utils.data.get_worker_info()
    workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
    return rank * workers + worker, world_size * workers


@dataclass(frozen=True)
class Split:
    """One split held in memory: inputs shaped ``(N, *input_shape)`` and encoded targets.

    The fast path of the batch design: batches are views of one gather per epoch, in the order
    and rank share of :class:`EpochBatches`. A streamed split
    (:class:`nnspec.run.streams.StreamSplit`) has the same ``y``, ``head`` and ``batches``.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def head(self, k: int) -> Batch:
        """The first ``k`` samples (split order) as one batch."""
        return {INPUT: self.x[:k], TARGET: self.y[:k]}

    def batches(
        self, sampler: EpochBatches, device: torch.device, *, workers: int = 0
    ) -> Iterable[Batch]:
        """The batches of ``sampler``'s current epoch, each time the result is iterated (the
        tensors are already on ``device``; ``workers`` is for streamed splits only)."""
        return _Slices(self, sampler)


class _Slices:
    """Re-iterable batches of an in-memory split: one gather per epoch, then views."""

    def __init__(self, split: Split, sampler: EpochBatches) -> None:
        self.split, self.sampler = split, sampler

    def __iter__(self) -> Iterator[Batch]:
        x, y, sampler = self.split.x, self.split.y, self.sampler
        positions, sizes = sampler.local()
        if sampler.shuffle or sampler.world_size > 1:
            x, y = x[positions], y[positions]
        start = 0
        for size in sizes:
            yield {INPUT: x[start : start + size], TARGET: y[start : start + size]}
            start += size
