"""FSDP2 (``train.strategy: fsdp``): parameters, gradients and optimizer state sharded over the
ranks by ``torch.distributed.fsdp.fully_shard``, checkpoints written by every rank through
``torch.distributed.checkpoint`` (DCP).

A checkpoint ``checkpoints/epoch-0002.pt`` of an FSDP run holds what every checkpoint holds
(epoch, step, schedule, loop state, RNG, spec hash), written by rank 0, with empty ``model`` and
``optimizer`` entries and ``sharded: "epoch-0002.dcp"``: the folder next to it where each rank
wrote its shard (``__<rank>_0.distcp``) and rank 0 the ``.metadata`` that DCP reads back with
pickle. :func:`shard_files` lists those files for the run's integrity manifest, which must be
verified before :func:`load_sharded` reads them. The shards are written into a temporary folder
renamed into place once DCP's save (a collective: every rank's shard is complete when it returns)
is done, and before the ``.pt`` that names them, so a killed run never points at half a folder.

The shards hold DTensors: such a checkpoint resumes under ``fsdp`` (with any world size DCP can
reshard to); ``model.pt`` at the end of the run is the full, unsharded state dict, gathered on
rank 0, that ``nnspec predict`` and a single-process run read.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.fsdp import fully_shard

from nnspec.errors import CheckpointError, Problem
from nnspec.run.outputs import RunWriter

__all__ = [
    "shard_model",
    "save_sharded",
    "load_sharded",
    "load_best",
    "full_state",
    "shard_files",
    "is_sharded",
    "SUFFIX",
]

SUFFIX = ".dcp"
SHARDED = "sharded"  # the checkpoint key naming the shard folder


def shard_model(model: nn.Module, device: torch.device) -> None:
    """``fully_shard`` every module that owns parameters, then the root (in place): each layer's
    parameters are gathered just before its forward and freed after."""
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    owners = [
        m
        for m in model.modules()
        if m is not model and next(m.parameters(recurse=False), None) is not None
    ]
    for module in owners:
        fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)


def save_sharded(
    writer: RunWriter, rels: Sequence[str], ckpt: dict[str, Any], prune: Sequence[str],
    model: nn.Module, optimizer: torch.optim.Optimizer,
) -> None:  # fmt: skip
    """Every rank: the model and optimizer shards of each checkpoint in ``rels``; rank 0: the
    ``.pt`` files naming them (on the writer's thread), and the pruned checkpoints' folders."""
    model_state, optim_state = get_state_dict(model, optimizer)
    for rel in rels:
        final = writer.path(rel).with_suffix(SUFFIX)
        tmp = final.with_name(f".{final.name}.tmp")
        if writer.enabled:
            shutil.rmtree(tmp, ignore_errors=True)
        dist.barrier()  # no rank writes into a folder rank 0 is still clearing
        dcp.save({"model": model_state, "optimizer": optim_state}, checkpoint_id=tmp)
        if writer.enabled:  # dcp.save returned: every shard and .metadata are on disk
            _replace_dir(tmp, final)
        dist.barrier()
    for i, rel in enumerate(rels):
        folder = writer.path(rel).with_suffix(SUFFIX).name
        meta = {**ckpt, "model": {}, "optimizer": {}, SHARDED: folder}
        writer.save_torch_background([rel], meta, prune if i == len(rels) - 1 else [])
    if writer.enabled:
        for rel in prune:
            shutil.rmtree(writer.path(rel).with_suffix(SUFFIX), ignore_errors=True)


def _replace_dir(new: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old")
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def load_sharded(
    checkpoint_dir: Path, ckpt: dict[str, Any], model: nn.Module,
    optimizer: torch.optim.Optimizer,
) -> None:  # fmt: skip
    """Every rank: load a checkpoint's shards into the sharded model and optimizer.

    Raises:
        CheckpointError: the checkpoint has no shards (a single-process or DDP checkpoint holds
            full tensors) or its shard folder is missing.
    """
    folder = _folder(checkpoint_dir, ckpt)
    model_state, optim_state = get_state_dict(model, optimizer)
    state: dict[str, Any] = {"model": model_state, "optimizer": optim_state}
    dcp.load(state, checkpoint_id=folder)
    set_state_dict(model, optimizer, model_state_dict=state["model"],
                   optim_state_dict=state["optimizer"])  # fmt: skip


def load_best(checkpoint_dir: Path, best: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """Every rank: the best epoch's sharded weights (DTensors), for ``restore_best``."""
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state: dict[str, Any] = {"model": weights}
    dcp.load(state, checkpoint_id=_folder(checkpoint_dir, best))
    return weights


def _folder(checkpoint_dir: Path, ckpt: dict[str, Any]) -> Path:
    folder = checkpoint_dir / str(ckpt.get(SHARDED, ""))
    if SHARDED not in ckpt or not (folder / ".metadata").is_file():
        raise CheckpointError(Problem(("train", "strategy"),
            f"{checkpoint_dir}: the checkpoint has no complete shard folder "
            f"{ckpt.get(SHARDED, '')!s}", expected="a checkpoint written under train.strategy: "
            "fsdp", fix="resume it with the strategy that wrote it (ddp or none for a "
            "full-tensor checkpoint)"))  # fmt: skip
    return folder


def full_state(model: nn.Module) -> dict[str, Any]:
    """Every rank: gather the full state dict on rank 0 (on the CPU); the others get ``{}``."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def shard_files(checkpoint: Path) -> list[Path]:
    """The files an FSDP checkpoint ``.pt`` depends on: its shard folder's ``.distcp`` files and
    ``.metadata`` (empty for a checkpoint without shards), for the run's integrity manifest."""
    folder = checkpoint.with_suffix(SUFFIX)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file())


def is_sharded(ckpt: dict[str, Any]) -> bool:
    """Whether a loaded checkpoint's weights live in a shard folder."""
    return SHARDED in ckpt
