"""The diabetes regression MLP of ``diabetes_mlp.yaml``, built with nnspec's spec classes.

``python examples/diabetes_mlp.py`` prints the canonical YAML; loading the ``.yaml`` gives an equal
spec (tests/compile/test_compile_examples.py checks both).
"""

from __future__ import annotations

import nnspec
from nnspec import DataSpec, EarlyStoppingSpec, ExperimentSpec, LayerDefaults, ModelSpec, TrainSpec
from nnspec.layers import Linear
from nnspec.optim import AdamW
from nnspec.schedules import Cosine


def build() -> ExperimentSpec:
    """10 features -> 64 -> 32 (ReLU) -> one linear output."""
    return ExperimentSpec(
        name="diabetes-mlp",
        seed=0,
        task="regression",
        data=DataSpec(source="sklearn:diabetes", batch_size=32),
        model=ModelSpec(
            input_shape=(10,),
            defaults=LayerDefaults(activation="relu"),
            layers=(
                Linear(out_features=64),
                Linear(out_features=32),
                Linear(out_features=1),  # the head: the prediction
            ),
        ),
        optim=AdamW(lr=3.0e-3, weight_decay=1.0e-2),
        schedule=Cosine(),
        train=TrainSpec(epochs=200, early_stopping=EarlyStoppingSpec(patience=20)),
    )


if __name__ == "__main__":
    print(nnspec.dump(build()), end="")
