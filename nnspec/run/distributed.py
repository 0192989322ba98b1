"""Data parallelism on PyTorch's own engine: one experiment over the processes torchrun (or a
SLURM job through Hydra's submitit launcher) started.

nnspec starts no process and opens no socket itself: :func:`session` reads the launcher's
environment (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT`` from
torchrun; a submitit job's ranks through ``submitit.helpers.TorchDistributedEnvironment``), calls
``torch.distributed.init_process_group`` (nccl on CUDA, gloo on CPU) and, after a barrier,
``destroy_process_group``. The training itself is PyTorch's
``torch.nn.parallel.DistributedDataParallel`` (``train.strategy: ddp``) or FSDP2's
``fully_shard`` (``fsdp``, :mod:`nnspec.run.fsdp`).

What a rank does, and why a 2-rank run computes what one process computes:

* ``data.batch_size`` is the global batch: every rank reads the same per-epoch order (a function
  of ``(seed, epoch)``) and takes its contiguous part of each global batch
  (``batch_size / world_size`` rows; a batch size that does not divide is refused, exit 2).
* The epoch's last, partial batch is split as evenly as it goes (sizes differ by at most one);
  each rank's gradient is weighted by its share of the batch, so the averaged gradient is the
  global batch's mean. A rank with no row left gets one padding row with weight 0 (padding with
  a mask): every rank runs the same number of steps and collectives, so none waits forever.
  Batches are mappings of named tensors. A map-style split (in memory, a streamed ``.npy`` or
  Dataset, named columns) is read per rank: :class:`~nnspec.run.batches.EpochBatches` with this
  rank and the world size gives the rank its rows of each global batch (strided; a last global
  batch too small to give every rank two rows is dropped), and :meth:`DataParallel.weigh`
  weighs each by its share. An iterable source is read whole by every rank and sliced
  (:meth:`DataParallel.shard`, contiguous rows, a weight-0 padding row for a rank left without
  any). Augmentation runs on a rank's own rows, so an augmented DDP run, like one with dropout,
  differs from one process while being statistically the same.
* The per-step loss the guards read is the global batch's (an ``all_reduce``); validation and
  test batches are split the same way, each rank updates mergeable metric states with its rows
  and :meth:`~nnspec.run.metrics.MetricSet.sync` sums or gathers them, so metrics equal a
  single-process run's; each epoch's row is rank 0's, broadcast, so early stopping, the plateau
  schedule and the guards decide the same everywhere.
* Rank 0 creates the run directory and broadcasts its path; it alone writes files, prints and
  draws plots. Checkpoints hold the unwrapped module's ``state_dict`` (DDP's ``module.`` prefix
  never reaches disk): a DDP run resumes a single-process checkpoint and the other way round.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from nnspec.errors import CheckpointError, NNSpecError, Problem, SpecError
from nnspec.run.batches import Batch, model_inputs
from nnspec.run.launch import LaunchEnv, launch_env, resolve_strategy
from nnspec.run.outputs import RunWriter
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["SingleProcess", "DataParallel", "FullySharded", "session"]

T = TypeVar("T")
Forward = Callable[..., torch.Tensor]


class SingleProcess:
    """One process: every method is the identity (the loop calls them unconditionally)."""

    rank = 0
    world_size = 1
    strategy: Literal["none", "ddp", "fsdp"] = "none"
    device: torch.device | None = None

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and prints."""
        return self.rank == 0

    def prepare(self, model: nn.Module) -> nn.Module:
        """The model to train (SyncBatchNorm, FSDP sharding); before the optimizer exists."""
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        """What the loop calls for the training forward pass (DDP's wrapper)."""
        return model

    def shard(self, batches: Iterable[Batch]) -> Iterable[Batch]:
        """This rank's part of each global training batch."""
        return batches

    def weigh(self, batches: Iterable[Batch], global_sizes: Sequence[int]) -> Iterable[Batch]:
        """Batches that hold this rank's rows already (a rank-sampled split), each weighed by
        its share of the global batch of ``global_sizes``."""
        return batches

    def eval_shards(self, batches: Iterable[Batch], forward: Forward,
                    inputs: tuple[str, ...]) -> Iterable[Batch]:  # fmt: skip
        """This rank's rows of each evaluation batch (its metric states are synced after)."""
        return batches

    def reduce_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """The global batch's loss (detached) from this rank's."""
        return loss.detach()

    def batch_len(self, rows: int) -> int:
        """Rows of the current global batch (``rows``: this rank's)."""
        return rows

    def broadcast_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """Rank 0's epoch row, so every rank decides on the same numbers."""
        return row

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when it is True on one."""
        return flag

    def main_first(self, fn: Callable[[], T]) -> T:
        """``fn()`` run by rank 0 and its result (or nnspec error) given to every rank."""
        return fn()

    # ---- checkpoints: full tensors (one process, DDP) or shards (FSDP, nnspec.run.fsdp) ----

    def train_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The checkpoint's ``model`` and ``optimizer`` entries."""
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict()}

    def save_checkpoint(self, writer: RunWriter, rels: Sequence[str], ckpt: dict[str, Any],
                        prune: Sequence[str], model: nn.Module,
                        optimizer: torch.optim.Optimizer) -> None:  # fmt: skip
        """Write a checkpoint (rank 0 alone unless the weights are sharded)."""
        writer.save_torch_background(rels, ckpt, prune)

    def load_train_state(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                         ckpt: dict[str, Any], run_dir: Path) -> None:  # fmt: skip
        """Load a checkpoint's weights and optimizer state (refuses FSDP shards)."""
        from nnspec.run.fsdp import is_sharded

        if is_sharded(ckpt):
            raise CheckpointError(Problem(("train", "strategy"),
                f"{run_dir} holds sharded (FSDP) checkpoints", found=self.strategy,
                expected="fsdp",
                fix="resume it with torchrun and train.strategy: fsdp"))  # fmt: skip
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])

    def best_weights(self, model: nn.Module, best: dict[str, Any], run_dir: Path) -> Any:
        """The best epoch's weights, for ``restore_best``."""
        return best["model"]

    def full_state(self, model: nn.Module) -> dict[str, Any]:
        """The whole model's state dict for ``model.pt`` (gathered on rank 0 under FSDP)."""
        return model.state_dict()


class DataParallel(SingleProcess):
    """One rank of a data-parallel run (the module docstring says what each method does)."""

    def __init__(self, env: LaunchEnv, strategy: Literal["ddp", "fsdp"], device: torch.device,
                 sync_batchnorm: bool) -> None:  # fmt: skip
        self.rank, self.world_size, self.strategy = env.rank, env.world_size, strategy
        self.device = self.rank_device = device
        self.sync_batchnorm = sync_batchnorm
        self._share, self._global = 1.0 / env.world_size, 0  # the current batch's

    def prepare(self, model: nn.Module) -> nn.Module:
        if self.sync_batchnorm:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        # The partial batch's weight reaches the gradient through the model's output (a hook on
        # its gradient), so it applies to DDP and FSDP alike and never to the L1 term, whose
        # gradient is the same on every rank.
        model.register_forward_hook(self._weigh_output)
        if self.strategy == "fsdp":
            from nnspec.run.fsdp import shard_model

            shard_model(model, self.rank_device)
        return model

    def _weigh_output(self, module: nn.Module, args: Any, out: Any) -> None:
        factor = self._share * self.world_size  # the collective then divides by world_size
        if factor != 1.0 and isinstance(out, torch.Tensor) and out.requires_grad:
            out.register_hook(lambda grad: grad * factor)

    def wrap(self, model: nn.Module) -> nn.Module:
        if self.strategy == "fsdp":
            return model  # fully_shard changed the module in place
        ids = [self.rank_device] if self.rank_device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def _part(self, n: int) -> tuple[int, int]:
        """This rank's contiguous rows ``(start, size)`` of an ``n``-row global batch: sizes
        differ by at most one; a rank gets none when ``n < world_size``."""
        base, extra = divmod(n, self.world_size)
        return self.rank * base + min(self.rank, extra), base + (self.rank < extra)

    def shard(self, batches: Iterable[Batch]) -> Iterator[Batch]:
        for data in batches:
            n = _rows(data)
            start, size = self._part(n)
            self._global = n
            if size == 0:  # padding: one row whose loss and gradient count 0
                self._share = 0.0
                yield _slice(data, n - 1, n)
            else:
                self._share = size / n
                yield _slice(data, start, start + size)
        self._share = 1.0 / self.world_size

    def weigh(self, batches: Iterable[Batch], global_sizes: Sequence[int]) -> Iterator[Batch]:
        # EpochBatches(rank, world_size) left no rank without rows (a last global batch too
        # small for two rows each is dropped), so no padding is needed here
        for data, n in zip(batches, global_sizes, strict=False):
            self._global, self._share = n, _rows(data) / n
            yield data
        self._share = 1.0 / self.world_size

    def eval_shards(self, batches: Iterable[Batch], forward: Forward,
                    inputs: tuple[str, ...]) -> Iterator[Batch]:  # fmt: skip
        # Every rank makes one forward call per batch (FSDP gathers parameters in each): a rank
        # without rows in a batch runs one padding row and scores nothing.
        for data in batches:
            n = _rows(data)
            start, size = self._part(n)
            if size:
                yield _slice(data, start, start + size)
            elif self.strategy == "fsdp":
                with torch.inference_mode():
                    forward(model_inputs(_slice(data, n - 1, n), inputs))

    def reduce_loss(self, loss: torch.Tensor) -> torch.Tensor:
        total = loss.detach().float() * self._share
        dist.all_reduce(total)
        return total

    def batch_len(self, rows: int) -> int:
        return self._global

    def broadcast_row(self, row: dict[str, Any]) -> dict[str, Any]:
        box = [row]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any_rank(self, flag: bool) -> bool:
        t = torch.tensor([float(flag)], device=self._collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def main_first(self, fn: Callable[[], T]) -> T:
        box: list[Any] = [None]
        if self.rank == 0:
            try:
                box[0] = ("ok", fn())
            except NNSpecError as e:  # every rank raises the user's mistake, none waits
                box[0] = ("error", e)
        dist.broadcast_object_list(box, src=0)
        kind, value = box[0]
        if kind == "error":
            raise value
        return value

    def _collective_device(self) -> torch.device:
        return self.rank_device if dist.get_backend() == "nccl" else torch.device("cpu")


class FullySharded(DataParallel):
    """One rank of an FSDP2 run: sharded checkpoints through DCP (:mod:`nnspec.run.fsdp`)."""

    def train_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        return {"model": {}, "optimizer": {}}  # the shards go to their own folder

    def save_checkpoint(self, writer: RunWriter, rels: Sequence[str], ckpt: dict[str, Any],
                        prune: Sequence[str], model: nn.Module,
                        optimizer: torch.optim.Optimizer) -> None:  # fmt: skip
        from nnspec.run.fsdp import save_sharded

        save_sharded(writer, rels, ckpt, prune, model, optimizer)

    def load_train_state(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                         ckpt: dict[str, Any], run_dir: Path) -> None:  # fmt: skip
        from nnspec.run.fsdp import load_sharded

        load_sharded(run_dir / "checkpoints", ckpt, model, optimizer)

    def best_weights(self, model: nn.Module, best: dict[str, Any], run_dir: Path) -> Any:
        from nnspec.run.fsdp import load_best

        return load_best(run_dir / "checkpoints", best, model)

    def full_state(self, model: nn.Module) -> dict[str, Any]:
        from nnspec.run.fsdp import full_state

        return full_state(model)


def _rank_device(device: torch.device, env: LaunchEnv) -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` on GPUs (one GPU per process), else the CPU."""
    if device.type != "cuda":
        return torch.device("cpu")
    local = torch.device("cuda", env.local_rank)
    torch.cuda.set_device(local)
    return local


def _check_sync_batchnorm(spec: ExperimentSpec, device: torch.device) -> None:
    if spec.train.sync_batchnorm and device.type != "cuda":
        raise SpecError(Problem(("train", "sync_batchnorm"),
            "torch's SyncBatchNorm runs on GPUs only (DistributedDataParallel refuses it on "
            f"{device.type})", expected="CUDA devices (train.device: cuda or auto on GPUs)",
            found=f"true on {device.type}", fix="train.sync_batchnorm: false: each rank then "
            "normalises with its own part of the batch"))  # fmt: skip


@contextlib.contextmanager
def session(spec: ExperimentSpec, device: torch.device) -> Iterator[SingleProcess]:
    """The run's processes: a :class:`SingleProcess`, or this rank of a data-parallel run with
    its process group (created here unless the caller made one, and then destroyed here after
    a barrier: a rank that tears its group down while another still talks to it can make gloo
    abort the process)."""
    env = launch_env()
    strategy = resolve_strategy(spec, env)
    if strategy == "none":
        yield SingleProcess()
        return
    if env.launcher == "submitit" and "MASTER_ADDR" not in os.environ:
        from submitit.helpers import TorchDistributedEnvironment

        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    device = _rank_device(device, env)
    _check_sync_batchnorm(spec, device)
    own = not dist.is_initialized()
    if own:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    ok = False
    try:
        kind = FullySharded if strategy == "fsdp" else DataParallel
        yield kind(env, strategy, device, spec.train.sync_batchnorm)
        ok = True
    finally:
        # The run's model, optimizer and FSDP state hold the group (and gloo's pending work
        # objects hold tensors) through reference cycles; freed here, while the interpreter is
        # alive. Left to interpreter exit, gloo's threads release those tensors after Python is
        # torn down and the process aborts ("terminate called without an active exception",
        # SIGABRT) after a finished run, now and then (seen in CI under FSDP).
        gc.collect()
        if own:
            if ok:  # after an error another rank may sit in a different collective
                dist.barrier()
            dist.destroy_process_group()


def _rows(data: Batch) -> int:
    return len(next(iter(data.values())))


def _slice(data: Batch, start: int, stop: int) -> Batch:
    """Rows ``start:stop`` of every named tensor of a batch."""
    return {name: t[start:stop] for name, t in data.items()}
