"""DDP on GPUs (nccl): SyncBatchNorm, which torch runs on CUDA devices only. Skipped without two
CUDA devices (one rank per GPU: nccl refuses two ranks on one device)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_ddp import ddp_runs

from nnspec.run import fit
from nnspec.run.api import resolve_spec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.gpu,
    pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices"),
]

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_sync_batchnorm_digits_cnn_matches_one_process_within_one_point(tmp_path: Path) -> None:
    overrides = ["train.epochs=10", "train.progress=none", "train.early_stopping.enabled=false",
                 f"train.output_dir={tmp_path / 'runs'}", "train.device=cuda"]  # fmt: skip
    spec, _ = resolve_spec(EXAMPLES / "digits_cnn.yaml", overrides)
    single = fit(spec).test_metrics["accuracy"]
    synced = spec.model_copy(
        update={"train": spec.train.model_copy(update={"sync_batchnorm": True})}
    )
    (run,) = ddp_runs(tmp_path, synced)
    assert abs(run["test"]["accuracy"] - single) <= 0.01
