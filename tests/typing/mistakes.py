"""User mistakes that mypy and pyright must both report: one mistake per line, each line marked.

Checked by ``make typecheck``, not run by pytest. mypy runs with ``warn_unused_ignores`` and
pyright with ``reportUnnecessaryTypeIgnoreComment``, so a mistake that a checker stops reporting
leaves an unused ignore comment, which fails the check.
"""

from __future__ import annotations

import nnspec
from nnspec import DataSpec, ExperimentSpec, LayerDefaults, ModelSpec, TrainSpec
from nnspec.init import VarianceScaling
from nnspec.layers import LSTM, Conv2d, Dropout, Linear
from nnspec.optim import SGD, AdamW
from nnspec.schedules import Cosine

layers = (Linear(out_features=8), Linear(out_features=2))
model = ModelSpec(input_shape=(4,), layers=layers)

# misspelt fields
Linear(out_featurs=8)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
AdamW(lr=1e-3, weight_decays=0.1)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
TrainSpec(epoch=10)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
ExperimentSpec(model=model, optimizer=SGD(lr=0.1))  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
DataSpec(batchsize=32)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]

# missing required fields
Linear()  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
Conv2d(out_channels=8)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
ExperimentSpec(name="no-model")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
LSTM()  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]

# wrong types
Linear(out_features="8")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
Dropout(p="0.5")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
TrainSpec(epochs=10.5)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
ModelSpec(input_shape=4, layers=layers)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
ExperimentSpec(model=model, seed="0")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
ExperimentSpec(model=model, optim="adamw")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
ExperimentSpec(model=model, schedule=Cosine)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]

# wrong literals
ExperimentSpec(model=model, task="multiclass")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
LayerDefaults(norm="btach")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
VarianceScaling(mode="fan_inn")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
Conv2d(out_channels=8, kernel_size=3, padding="full")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
TrainSpec(precision="fp8")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
# (train.device is a string checked at validation: "cuda:N" cannot be a Literal)

# misused API
nnspec.Linear(out_features=8)  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
nnspec.load(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
nnspec.build_model("model.yaml")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
width = layers[0].out_feature  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
nnspec.train(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
nnspec.compile("model.yaml")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
nnspec.infer_shapes(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
nnspec.register_layer("scale", Linear, builder=3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
nnspec.load_run(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
nnspec.compose(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
nnspec.lint(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
