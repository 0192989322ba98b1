"""Specs built the way users build them (README, examples): mypy and pyright report no error.

Checked by ``make typecheck``, not run by pytest. Every name is imported from its documented path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import nn

import nnspec
from nnspec import (
    BlockDef,
    Callback,
    CheckpointSpec,
    ClipGradSpec,
    DataSpec,
    EarlyStoppingSpec,
    ExperimentSpec,
    FitState,
    LayerBase,
    LayerDefaults,
    LintSpec,
    LossSpec,
    ModelSpec,
    MonitorsSpec,
    ParamDef,
    ResidualSpec,
    SpecError,
    SplitSpec,
    TrainSpec,
)
from nnspec.activations import GELU, LeakyReLU, ReLU
from nnspec.compile import LayerInfo
from nnspec.init import Orthogonal, Preset, VarianceScaling
from nnspec.layers import (
    LSTM,
    Add,
    BatchNorm,
    BlockUse,
    Concat,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    LayerNorm,
    Linear,
    MaxPool2d,
    MultiheadAttention,
    SequencePool,
    SqueezeExcitation,
    TransformerEncoderLayer,
)
from nnspec.optim import SGD, Adam, AdamW
from nnspec.schedules import Cosine, OneCycle, Step, WarmupSpec

mlp = ExperimentSpec(
    name="mlp",
    seed=0,
    task="binary",
    data=DataSpec(
        source="sklearn:breast_cancer",
        batch_size=32,
        split=SplitSpec(train=0.8, val=0.1, test=0.1),
    ),
    model=ModelSpec(
        input_shape=(30,),
        defaults=LayerDefaults(activation=ReLU(), norm="batch", init=Preset(kind="auto")),
        layers=(
            Linear(out_features=64, dropout=0.1),
            Linear(out_features=32, activation=LeakyReLU(negative_slope=0.1)),
            Linear(out_features=1, init=VarianceScaling(scale=1.0, mode="fan_avg")),
        ),
    ),
    loss=LossSpec(kind="bce_with_logits"),
    optim=AdamW(lr=3.0e-4, weight_decay=0.1),
    schedule=Cosine(warmup=WarmupSpec(epochs=2)),
    train=TrainSpec(
        epochs=150,
        early_stopping=EarlyStoppingSpec(patience=20),
        clip_grad=ClipGradSpec(kind="norm", max_norm=1.0),
        checkpoint=CheckpointSpec(keep_last=3),
        monitors=MonitorsSpec(grad_norms=True),
    ),
    lint=LintSpec(ignore=("REG-4",)),
)

cnn = ModelSpec(
    input_shape=(1, 8, 8),
    layers=(
        Conv2d(out_channels=32, kernel_size=3, padding="same", norm="batch"),
        SqueezeExcitation(reduction=4),
        MaxPool2d(kernel_size=2),
        Flatten(),
        Linear(out_features=128, activation=GELU()),
        Dropout(p=0.3),
        Linear(out_features=10),
    ),
)

resnet = ModelSpec(
    input_shape=(3, 32, 32),
    blocks={
        "basic": BlockDef(
            params={"width": ParamDef(type="int")},
            residual=ResidualSpec(style="post"),
            layers=({"conv2d": "$width", "kernel_size": 3, "padding": 1},),
        )
    },
    layers=(
        Conv2d(out_channels=16, kernel_size=3, padding=1),
        BlockUse(block="basic", args={"width": 16}, repeat=2),
        Flatten(),
        Linear(out_features=10),
    ),
)

branches = ModelSpec(
    inputs={"image": (1, 8, 8), "tabular": (5,)},
    outputs=("digit",),
    layers=(
        Flatten(inputs=("image",), name="img"),
        Linear(out_features=16, inputs=("tabular",), name="tab"),
        Concat(dim=1, inputs=("img", "tab"), name="both"),
        Linear(out_features=16, name="hidden"),
        Add(inputs=("hidden", "tab")),
        Linear(out_features=10, name="digit"),
    ),
)

sequence = ModelSpec(
    input_shape=(20, 8),
    layers=(
        LSTM(hidden_size=32, bidirectional=True, output="sequence"),
        LayerNorm(),
        MultiheadAttention(num_heads=4),
        TransformerEncoderLayer(num_heads=4),
        SequencePool(mode="mean"),
        Linear(out_features=2),
    ),
)

tokens = ModelSpec(
    input_shape=(16,),
    layers=(Embedding(num_embeddings=100, embedding_dim=8), Flatten(), Linear(out_features=2)),
)

other_optimizers = (SGD(lr=0.1, momentum=0.9, nesterov=True), Adam(lr=1e-3))
other_schedules = (Step(step_epochs=10, gamma=0.5), OneCycle())
other_inits = (Orthogonal(gain=1.0), BatchNorm(momentum=0.01))

text: str = nnspec.dump(mlp)
loaded: ExperimentSpec = nnspec.loads(text)
assert loaded == mlp
from_file: ExperimentSpec = nnspec.load("examples/iris_mlp.yaml")
moved = mlp.model_copy(update={"seed": 1})

model: nn.Module = nnspec.build_model(cnn)
compiled = nnspec.compile(mlp)
optimizer = compiled.plan.make_optimizer(compiled.model)
try:
    nnspec.compile({"model": {"input_shape": [4], "layers": [{"linear": 2}]}})
except SpecError as err:
    print([(p.where, p.message) for p in err.problems])


class ScaleSpec(LayerBase):
    """A user layer (README: custom layers)."""

    kind: Literal["scale"] = "scale"
    value: float = 2.0


class Scale(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.value


def build_scale(spec: LayerBase, info: LayerInfo) -> nn.Module:
    assert isinstance(spec, ScaleSpec)  # the builder is typed for any layer spec
    return Scale(spec.value)


nnspec.register_layer("scale", ScaleSpec, build_scale)


class PrintEvery(Callback):
    """A user callback (README: Callbacks) whose step interval is set per instance."""

    def __init__(self, every: int) -> None:
        self.every_n_steps = every

    def on_step_end(self, state: FitState) -> None:
        state.message(f"step {state.step}: loss {state.loss:.3f}")
        if state.step >= 1000:
            state.stop("enough steps")


def train_printing(spec: ExperimentSpec) -> float:
    """Not called here (it would train): type-checked only."""
    result = nnspec.train(spec, callbacks=[PrintEvery(50)])
    return result.best_value


def extend_run(run_dir: Path) -> int:
    """Not called here (it would train): type-checked only."""
    result = nnspec.train(run_dir, ["train.epochs=60", "schedule={kind: constant}"], extend=True)
    return result.epochs_run
