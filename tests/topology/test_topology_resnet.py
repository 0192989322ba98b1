"""ResNet-18/34 from examples/ against a hand-written torch ResNet (no torchvision needed)."""

from __future__ import annotations

from pathlib import Path

import torch
from reference_resnet import ResNet
from torch import nn

import nnspec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_resnet18_example_has_the_reference_parameter_count_and_output() -> None:
    spec = nnspec.load(EXAMPLES / "resnet18.yaml").model
    assert len((EXAMPLES / "resnet18.yaml").read_text().splitlines()) <= 40
    assert sum(i.params for i in nnspec.infer_shapes(spec)) == 11_689_512
    model = nnspec.build_model(spec).eval()
    assert _count(model) == 11_689_512
    with torch.no_grad():
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 1000)


def test_resnet34_differs_only_in_repeat_counts() -> None:
    spec18 = nnspec.load(EXAMPLES / "resnet18.yaml")
    spec34 = nnspec.load(EXAMPLES / "resnet34.yaml")
    repeats = [layer.repeat for layer in spec34.model.layers if layer.kind == "block"]
    assert repeats == [3, 4, 6, 3]
    swapped = [
        layer.model_copy(update={"repeat": r}) if layer.kind == "block" else layer
        for layer, r in zip(spec18.model.layers, [0, 0, 3, 4, 6, 3, 0, 0, 0], strict=True)
    ]
    assert tuple(swapped) == spec34.model.layers
    assert sum(i.params for i in nnspec.infer_shapes(spec34.model)) == 21_797_672
    assert _count(ResNet((3, 4, 6, 3))) == 21_797_672


def test_resnet18_matches_a_hand_written_torch_resnet_after_copying_weights() -> None:
    ours = nnspec.build_model(nnspec.load(EXAMPLES / "resnet18.yaml").model).eval()
    ref = ResNet((2, 2, 2, 2)).eval()
    assert _count(ours) == _count(ref) == 11_689_512
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert [v.shape for v in ours_sd.values()] == [v.shape for v in ref_sd.values()]
    ref.load_state_dict(dict(zip(ref_sd, ours_sd.values(), strict=True)))  # copy in order
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)


def test_state_dict_keys_follow_block_use_repetition_and_layer() -> None:
    keys = set(nnspec.build_model(nnspec.load(EXAMPLES / "resnet18.yaml").model).state_dict())
    assert {"layers.3.0.body.0.op.weight", "layers.3.0.shortcut.op.weight",
            "layers.3.0.shortcut.norm.running_var", "layers.8.op.bias"} <= keys  # fmt: skip
    assert "layers.3.1.shortcut.op.weight" not in keys  # shapes match: identity shortcut
