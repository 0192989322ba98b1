"""The breast-cancer MLP of ``breast_cancer_mlp.yaml``, built with nnspec's spec classes.

``python examples/breast_cancer_mlp.py`` prints the canonical YAML; loading the ``.yaml`` gives an
equal spec (tests/compile/test_compile_examples.py checks both).
"""

from __future__ import annotations

import nnspec
from nnspec import DataSpec, EarlyStoppingSpec, ExperimentSpec, LayerDefaults, ModelSpec, TrainSpec
from nnspec.layers import Linear
from nnspec.optim import AdamW
from nnspec.schedules import Cosine


def build() -> ExperimentSpec:
    """30 features -> 32 -> 16 (ReLU) -> one logit; regularised by weight decay."""
    return ExperimentSpec(
        name="breast-cancer-mlp",
        seed=0,
        task="binary",
        data=DataSpec(source="sklearn:breast_cancer", batch_size=32),
        model=ModelSpec(
            input_shape=(30,),
            defaults=LayerDefaults(activation="relu"),
            layers=(
                Linear(out_features=32),
                Linear(out_features=16),
                Linear(out_features=1),  # the head: one logit
            ),
        ),
        optim=AdamW(lr=3.0e-4, weight_decay=0.1),
        schedule=Cosine(),
        train=TrainSpec(epochs=150, early_stopping=EarlyStoppingSpec(patience=20)),
    )


if __name__ == "__main__":
    print(nnspec.dump(build()), end="")
