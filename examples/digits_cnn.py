"""The digits CNN of ``digits_cnn.yaml``, built with nnspec's spec classes.

``python examples/digits_cnn.py`` prints the canonical YAML; loading ``digits_cnn.yaml`` gives an
equal spec (tests/compile/test_compile_examples.py checks both).
"""

from __future__ import annotations

import nnspec
from nnspec import DataSpec, ExperimentSpec, LayerDefaults, ModelSpec, TrainSpec
from nnspec.activations import LeakyReLU
from nnspec.init import Preset
from nnspec.layers import Conv2d, Flatten, Linear, MaxPool2d
from nnspec.optim import AdamW
from nnspec.schedules import OneCycle


def build() -> ExperimentSpec:
    """Two same-padded 3x3 convs with batch norm, a 2x2 max pool, a hidden linear, the head."""
    return ExperimentSpec(
        name="digits-cnn",
        seed=0,
        task="classification",
        data=DataSpec(source="sklearn:digits", batch_size=64),
        model=ModelSpec(
            input_shape=(1, 8, 8),
            defaults=LayerDefaults(activation="relu", norm="batch", init=Preset(kind="auto")),
            layers=(
                Conv2d(out_channels=32, kernel_size=3, padding="same"),
                Conv2d(
                    out_channels=32,
                    kernel_size=3,
                    padding="same",
                    activation=LeakyReLU(negative_slope=0.1),
                ),
                MaxPool2d(kernel_size=2),
                Flatten(),
                Linear(out_features=128, dropout=0.3),
                Linear(out_features=10),  # the head: logits, no norm, no dropout
            ),
        ),
        optim=AdamW(lr=3.0e-3, weight_decay=1.0e-2),
        schedule=OneCycle(),
        train=TrainSpec(epochs=30),
    )


if __name__ == "__main__":
    print(nnspec.dump(build()), end="")
