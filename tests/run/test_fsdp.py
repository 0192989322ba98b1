"""FSDP2 (``train.strategy: fsdp``) on CPU with gloo: trains the MLP as one process does and
resumes from its sharded (torch.distributed.checkpoint) checkpoint bitwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_ddp import _spec, assert_same_weights, ddp_runs, weights

from nnspec.run import fit
from nnspec.run.checkpoint import load_checkpoint
from nnspec.run.fsdp import shard_files

pytestmark = pytest.mark.slow


def test_fsdp_trains_and_resumes_from_its_shards_bitwise(tmp_path: Path) -> None:
    (full,) = ddp_runs(tmp_path / "full", _spec(tmp_path / "full", strategy="fsdp"))
    # the sharded model (and through it the process group) is freed before the group is
    # destroyed, not at interpreter exit, where gloo could abort a finished run
    assert full["fsdp_alive"] == 0
    single = fit(_spec(tmp_path / "single"))
    assert_same_weights(weights(full["run_dir"]), weights(single.run_dir))  # gathered, unsharded

    (stopped,) = ddp_runs(tmp_path / "b", _spec(tmp_path / "b", strategy="fsdp"), "--stop-at", "2")
    run_dir = Path(stopped["run_dir"])
    ckpt = load_checkpoint(run_dir / "checkpoints" / "epoch-0002.pt")
    assert ckpt["model"] == {} and ckpt["sharded"] == "epoch-0002.dcp"
    files = {p.name for p in shard_files(run_dir / "checkpoints" / "epoch-0002.pt")}
    assert files == {"__0_0.distcp", "__1_0.distcp", ".metadata"}  # for the run's manifest
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))

    (resumed,) = ddp_runs(tmp_path / "b",
                          _spec(tmp_path / "b", strategy="fsdp", resume=str(run_dir)))  # fmt: skip
    assert resumed["epochs"] == 4 and len(resumed["losses"]) == 14
    assert resumed["losses"] == full["losses"][14:]  # bitwise: same floats, not close ones
    a, b = weights(resumed["run_dir"]), weights(full["run_dir"])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_sharded_checkpoint_is_refused_by_one_process(tmp_path: Path) -> None:
    (stopped,) = ddp_runs(tmp_path, _spec(tmp_path, strategy="fsdp"), "--stop-at", "1")
    from nnspec.errors import CheckpointError

    with pytest.raises(CheckpointError, match=r"resume it with torchrun and train\.strategy: fsdp"):
        fit(_spec(tmp_path, resume=stopped["run_dir"]))
