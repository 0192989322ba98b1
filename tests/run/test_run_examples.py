"""The example specs: every one trains a few steps (fast); the acceptance scores (slow).

Acceptance: mean test score over seeds 0, 1, 2 (each seed a different split and init):
digits CNN >= 0.975 accuracy, breast cancer >= 0.95, wine >= 0.94, iris >= 0.93, diabetes R^2 >=
a linear regression's R^2 on the same splits - 0.05.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nnspec.workflow import train

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TRAINED = [
    "digits_cnn",
    "breast_cancer_mlp",
    "wine_mlp",
    "iris_mlp",
    "diabetes_mlp",
    "synthetic_mlp",
]
SEEDS = (0, 1, 2)
FAST = ["train.num_threads=1", "train.progress=none"]


@pytest.mark.parametrize("name", TRAINED)
def test_example_trains_a_few_steps(name: str, tmp_path: Path) -> None:
    result = train(EXAMPLES / f"{name}.yaml", [*FAST, "train.epochs=1", "train.max_steps=3"],
                   run_dir=tmp_path / "run")  # fmt: skip
    assert result.epochs_run == 1 and result.test_metrics


def _mean(name: str, metric: str, tmp: Path) -> float:
    scores = [
        train(EXAMPLES / f"{name}.yaml", [*FAST, f"seed={s}"], run_dir=tmp / str(s)).test_metrics[
            metric
        ]
        for s in SEEDS
    ]
    return sum(scores) / len(scores)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "target"),
    [("digits_cnn", 0.975), ("breast_cancer_mlp", 0.95), ("wine_mlp", 0.94), ("iris_mlp", 0.93)],
)
def test_classification_examples_reach_their_accuracy(
    name: str, target: float, tmp_path: Path
) -> None:
    assert _mean(name, "accuracy", tmp_path) >= target


@pytest.mark.slow
def test_diabetes_mlp_is_within_005_of_linear_regression(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    from nnspec.io import load
    from nnspec.run.data import prepare_data

    linear = []
    for s in SEEDS:  # the same splits as the nnspec runs
        spec = load(EXAMPLES / "diabetes_mlp.yaml").model_copy(update={"seed": s})
        b = prepare_data(spec)
        fit = LinearRegression().fit(b.train.x.numpy(), b.train.y.numpy())
        linear.append(r2_score(b.test.y.numpy(), fit.predict(b.test.x.numpy())))
    assert _mean("diabetes_mlp", "r2", tmp_path) >= sum(linear) / len(linear) - 0.05
