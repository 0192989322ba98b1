"""register_layer: user kinds validate in YAML only once registered, build, and infer shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pytest
import torch
from pydantic import Field
from torch import nn

import nnspec
from nnspec.compile import LayerInfo, build_model, infer_shapes, register_layer, unregister_layer
from nnspec.errors import CompileError, ShapeError, SpecError
from nnspec.registry import RegistryError
from nnspec.spec import LayerBase, ModelSpec


class ScaleSpec(LayerBase):
    """Multiply by a constant."""

    kind: Literal["test_scale"] = "test_scale"
    value: float = Field(2.0, description="The factor.")


class Scale(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.value


class SESpec(LayerBase):
    """Squeeze-and-excitation: channel weights from a bottleneck MLP on pooled features."""

    kind: Literal["test_se"] = "test_se"
    reduction: int = Field(4, gt=0, description="Bottleneck = channels // reduction.")


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc(x.mean(dim=(2, 3)))
        return x * w[:, :, None, None]


def _build_se(spec: SESpec, info: LayerInfo) -> nn.Module:
    return SqueezeExcite(info.in_shape[0], spec.reduction)


YAML = """
model:
  input_shape: [8, 5, 5]
  layers:
    - {kind: test_se, reduction: 2}
    - {test_scale: {value: 3.0}}
    - flatten
    - {linear: 2}
"""


@pytest.fixture
def registered() -> Iterator[None]:
    register_layer("test_scale", ScaleSpec, lambda spec, info: Scale(spec.value))
    register_layer("test_se", SESpec)(_build_se)  # decorator form
    yield
    unregister_layer("test_scale")
    unregister_layer("test_se")


def test_unknown_before_registration() -> None:
    with pytest.raises(SpecError) as info:
        nnspec.loads(YAML)
    assert any(p.path[:3] == ("model", "layers", 0) for p in info.value.problems)


def test_yaml_validates_builds_and_infers_after_registration(registered: None) -> None:
    spec = nnspec.loads(YAML).model
    se, scale, _, _ = infer_shapes(spec)
    assert se.out_shape == (8, 5, 5) and se.params == (8 * 4 + 4) + (4 * 8 + 8)
    assert scale.out_shape == (8, 5, 5) and scale.params == 0
    before = torch.random.get_rng_state()
    model = build_model(spec, seed=1)
    assert torch.equal(before, torch.random.get_rng_state())
    x = torch.randn(3, 8, 5, 5)
    assert model(x).shape == (3, 2)
    assert torch.allclose(model.layers[1](x), 3 * x)
    assert model.init_records["layers.0.fc.0.weight"].source == "builder"
    assert set(model.init_records) == {n for n, _ in model.named_parameters()}
    a, b = build_model(spec, seed=1).state_dict(), model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # the builder's own init is seeded by nnspec


def test_duplicates_are_refused(registered: None) -> None:
    with pytest.raises(RegistryError, match="already registered"):
        register_layer("test_scale", ScaleSpec, lambda spec, info: Scale(1.0))
    with pytest.raises(RegistryError, match="already registered"):
        register_layer("linear", ScaleSpec, lambda spec, info: Scale(1.0))


def test_kind_must_match_the_spec_class() -> None:
    with pytest.raises(RegistryError, match="must default to 'other'"):
        register_layer("other", ScaleSpec, lambda spec, info: Scale(1.0))
    assert "other" not in nnspec.spec.layers.LAYER_SPECS


def test_built_ins_cannot_be_unregistered() -> None:
    with pytest.raises(RegistryError):
        unregister_layer("linear")


def test_shape_fn_is_used_when_given() -> None:
    class CropSpec(LayerBase):
        kind: Literal["test_crop"] = "test_crop"

    class Crop(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :-1]

    register_layer(
        "test_crop", CropSpec, lambda spec, info: Crop(), lambda spec, shape: (shape[0] - 1,)
    )
    try:
        spec = ModelSpec.model_validate(
            {"input_shape": [5], "layers": ["test_crop", {"linear": 1}]}
        )
        assert infer_shapes(spec)[0].out_shape == (4,)
        assert build_model(spec)(torch.zeros(2, 5)).shape == (2, 1)
    finally:
        unregister_layer("test_crop")


def test_rejected_input_is_a_shape_error(registered: None) -> None:
    # SE averages over (H, W): a 1-D input fails in the meta dry run, reported at the layer.
    spec = ModelSpec.model_validate({"input_shape": [8], "layers": ["test_se", {"linear": 1}]})
    with pytest.raises(ShapeError) as info:
        infer_shapes(spec)
    assert info.value.problems[0].path == ("model", "layers", 0)
    assert "test_se: the custom layer rejected its input" in str(info.value)


def test_failing_builder_is_a_compile_error() -> None:
    class BadSpec(LayerBase):
        kind: Literal["test_bad"] = "test_bad"

    calls = []

    def build(spec: BadSpec, info: LayerInfo) -> nn.Module:
        calls.append(info.in_shape)
        if len(calls) > 1:  # the meta dry run passes; the real build fails
            raise RuntimeError("boom")
        return nn.Identity()

    register_layer("test_bad", BadSpec, build)
    try:
        spec = ModelSpec.model_validate({"input_shape": [3], "layers": ["test_bad", {"linear": 1}]})
        with pytest.raises(CompileError, match="builder of layer kind 'test_bad' failed: boom"):
            build_model(spec)
    finally:
        unregister_layer("test_bad")
