"""The topology examples: README snippet, smoke runs (fast) and the accuracy targets (slow)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import nnspec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TRAINED = ("digits_resnet", "seq_lstm", "seq_transformer")


def test_readme_topologies_snippets_run() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Topologies", 1)[1].split("\n## ", 1)[0]
    (yaml_block,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert nnspec.loads(yaml_block).model == nnspec.load(EXAMPLES / "resnet18.yaml").model
    for code in re.findall(r"```python\n(.*?)```", section, re.S):
        exec(compile(code, "README.md#topologies", "exec"), {})


def _overrides(tmp_path: Path, seed: int = 0) -> list[str]:
    return [f"seed={seed}", f"train.output_dir={tmp_path}", "train.progress=none"]


@pytest.mark.parametrize("name", TRAINED)
def test_example_smoke_run(name: str, tmp_path: Path) -> None:
    spec = nnspec.load(EXAMPLES / f"{name}.yaml")
    smoke = ["train.epochs=1", "train.max_steps=2"]
    if spec.data.source.startswith("synthetic:"):
        smoke += ["data.n_samples=300", "data.split.stratify=false"]
    result = nnspec.train(EXAMPLES / f"{name}.yaml", overrides=_overrides(tmp_path) + smoke)
    assert result.n_params == sum(i.params for i in nnspec.infer_shapes(spec.model))
    assert 0.0 <= result.test_metrics["accuracy"] <= 1.0


def _majority(name: str) -> float:
    from nnspec.run.data import prepare_data

    y = prepare_data(nnspec.load(EXAMPLES / f"{name}.yaml")).test.y.numpy()
    labels = y.reshape(len(y), -1)[:, 0].astype(np.int64)  # binary targets are (N, 1) floats
    return float(np.bincount(labels).max() / len(labels))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "target", "majority_below"),
    [("digits_resnet", 0.97, 0.2), ("seq_lstm", 0.95, 0.6), ("seq_transformer", 0.95, 0.2)],
)
def test_example_reaches_its_accuracy_over_three_seeds(
    name: str, target: float, majority_below: float, tmp_path: Path
) -> None:
    path = EXAMPLES / f"{name}.yaml"
    accs = [
        nnspec.train(path, overrides=_overrides(tmp_path, s)).test_metrics["accuracy"]
        for s in range(3)
    ]
    assert np.mean(accs) >= target, accs
    assert _majority(name) < majority_below  # the task is not solved by guessing the majority
