"""The step's slow tier: fp16 on a real example, torch.compile (inductor compiles C++ with the
system's compiler on the CPU; the first call takes seconds)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from runhelp import tiny

from nnspec.workflow import train

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = pytest.mark.slow


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_fp16_with_a_scaler_trains_digits_to_the_fp32_accuracy(tmp_path: Path) -> None:
    # 8 of the example's 30 epochs (one_cycle fits its schedule to them): torch's fp16 convolution
    # backward on the CPU is a slow reference kernel (docs/benchmarks.md has the full run)
    common = ["train.epochs=8", "train.progress=none", f"train.output_dir={tmp_path}"]
    runs = {
        precision: train(EXAMPLES / "digits_cnn.yaml", [f"train.precision={precision}", *common])
        for precision in ("fp32", "fp16")
    }
    fp32, fp16 = (runs[p].test_metrics["accuracy"] for p in ("fp32", "fp16"))
    assert fp32 > 0.95
    assert abs(fp16 - fp32) <= 0.005, (fp16, fp32)
    rows = _rows(runs["fp16"].run_dir)
    assert all("loss_scale" in r and "skipped_steps" in r for r in rows)


# torch.compile's import of inductor touches torch.jit.script_method, deprecated in torch 2.13
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None,
                    reason="torch.compile's CPU backend needs a C++ compiler")  # fmt: skip
def test_compiled_training_matches_eager_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[torch.nn.Module] = []
    compile_ = torch.compile

    def spy(model: torch.nn.Module, **kwargs: Any) -> Any:
        compiled.append(model)
        return compile_(model, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)

    def run(flag: bool) -> Path:
        return train(tiny(tmp_path / str(flag), train={"compile": flag, "epochs": 2})).run_dir

    eager, comp = run(False), run(True)
    assert len(compiled) == 1  # the compiled run only
    a, b = _rows(eager), _rows(comp)
    assert [r["train_loss"] for r in b] == pytest.approx([r["train_loss"] for r in a], rel=1e-4)
    assert [r["val_loss"] for r in b] == pytest.approx([r["val_loss"] for r in a], rel=1e-4)
    wa, wb = (torch.load(d / "model.pt", weights_only=True)["model"] for d in (eager, comp))
    assert wa.keys() == wb.keys()  # compiled runs keep the plain module's keys
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-4, atol=1e-5)
