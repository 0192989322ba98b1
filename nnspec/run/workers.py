"""DataLoader worker processes of the streamed passes: their memory (glibc's heap in the
training process and in each worker), their seeds, and the epoch batches they read.

Separate from :mod:`nnspec.run.streams` (what a streamed source and split are): this is how
any streamed reader's batches travel, for table rows, named items and iterable pieces alike.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch

from nnspec.run.batches import Batch, EpochBatches, SeededEpochs

__all__ = [
    "own_generator", "release_freed_buffers", "release_heap", "whole_batch", "worker_batches",
]  # fmt: skip


def own_generator() -> torch.Generator:
    """A one-pass loader's own generator: its draw of the workers' base seed leaves the global
    RNG (dropout's) alone, so passes with and without workers train alike."""
    return torch.Generator().manual_seed(0)


def whole_batch(batch: Any) -> Any:
    return batch  # __getitems__ already returns the collated batch mapping


def _libc() -> Any:
    """The C library's functions, from the process's own symbols (``dlopen(NULL)``); None where
    there is no such table (Windows)."""
    import ctypes

    try:
        return ctypes.CDLL(None)  # the libraries already loaded, libc among them
    except (OSError, TypeError):
        return None


def release_heap() -> None:
    """Give the heap's free memory back to the operating system (glibc's ``malloc_trim``;
    elsewhere a no-op), called in the training process after a one-pass scan.

    A scan frees chunk-sized float64 temporaries; glibc then raises its mmap threshold to their
    size and keeps up to twice that free at the top of the heap. Each DataLoader worker forked
    afterwards would count those pages again in its RssAnon (measured in docs/benchmarks.md,
    streamed data).
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def release_freed_buffers(worker_id: int) -> None:
    """DataLoader ``worker_init_fn`` of the streamed splits: batch-sized buffers go back to the
    operating system when freed, and SIGTERM quiet (:func:`quiet_sigterm`).

    glibc's malloc raises its mmap threshold to the size of the first large block freed; every
    batch buffer after that comes from the heap, whose freed blocks a worker keeps, so a worker's
    memory grows with the batch size (docs/benchmarks.md, streamed data). A fixed threshold
    (``mallopt(M_MMAP_THRESHOLD)``) keeps them mapped and returned. Elsewhere than glibc: no-op.

    libc is the process's own symbol table (``dlopen(NULL)``), not ``ctypes.util.find_library``:
    that runs ``ldconfig -p`` in a subprocess, and a worker forked with a copy of its parent's
    pages would fork once more at start, a fourth process holding the same anonymous memory.
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD (-3): blocks of 1 MiB and more are mapped
    quiet_sigterm()


def quiet_sigterm() -> None:
    """A DataLoader worker under the training loop's SIGTERM handler
    (:func:`~nnspec.run.guards.stop_on_sigterm`) ends on SIGTERM at once with exit status 0.

    A signal sent to the whole process group (``scancel``, ``kill -TERM -PGID``) reaches the
    workers and the training process together. Killed by the signal, a worker makes torch's
    SIGCHLD handler raise "DataLoader worker killed by signal" in the training process, at any
    point of its clean-up (while it finishes the pending checkpoint, say); torch reports a
    worker that exits with status 0 as nothing. Ignoring the signal instead would not do either:
    torch ends a worker that does not stop in time with SIGTERM (``terminate``)."""
    if getattr(signal.getsignal(signal.SIGTERM), "nnspec_stop", False):
        signal.signal(signal.SIGTERM, _exit_quietly)


def _exit_quietly(signum: int, frame: object) -> None:
    os._exit(0)


def worker_batches(
    reader: torch.utils.data.Dataset[Batch], sampler: EpochBatches, device: torch.device,
    workers: int, targets: Mapping[str, torch.Tensor] | None = None,
) -> Iterable[Batch]:  # fmt: skip
    """A streamed split's batches: ``reader.__getitems__`` reads and prepares each batch of
    ``sampler``'s current epoch inside one of ``workers`` DataLoader workers (pinned on CUDA,
    then moved to ``device``), each time the result is iterated.

    ``targets`` (the split's encoded targets, already in this process's memory) are gathered
    here for each batch's positions instead of in the worker: every tensor a worker sends back
    costs a file-descriptor hand-over (one socket connection per tensor, about 2 ms on this
    machine's 2 cores), and a model with several outputs has one target tensor each.
    """

    def loader(generator: torch.Generator) -> Iterable[Batch]:
        return torch.utils.data.DataLoader(
            reader,
            batch_sampler=sampler,
            num_workers=workers,
            collate_fn=whole_batch,
            pin_memory=device.type == "cuda",
            worker_init_fn=release_freed_buffers,
            generator=generator,
        )  # workers live for one pass (torch's default): an evaluation's and a training
        # epoch's never run at once, so memory is that of one pass's workers

    data: Iterable[Batch] = SeededEpochs(loader, sampler)
    if targets:
        data = _WithTargets(data, sampler, targets)
    return data if device.type == "cpu" else _OnDevice(data, device)


class _WithTargets:
    """Each batch of ``batches`` with the targets of its positions (the sampler's batches, in
    the same order: the DataLoader keeps its batch sampler's order)."""

    def __init__(
        self, batches: Iterable[Batch], sampler: EpochBatches, targets: Mapping[str, torch.Tensor]
    ) -> None:
        self.batches, self.sampler, self.targets = batches, sampler, targets

    def __iter__(self) -> Iterator[Batch]:
        for positions, batch in zip(self.sampler, self.batches, strict=True):
            index = torch.tensor(positions, dtype=torch.int64)
            yield {**batch, **{key: t[index] for key, t in self.targets.items()}}


class _OnDevice:
    def __init__(self, batches: Iterable[Batch], device: torch.device) -> None:
        self.batches, self.device = batches, device

    def __iter__(self) -> Iterator[Batch]:
        device = self.device
        for batch in self.batches:
            yield {k: v.to(device, non_blocking=True) for k, v in batch.items()}
