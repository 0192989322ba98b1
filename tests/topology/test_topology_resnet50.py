"""examples/resnet50.yaml (bottleneck blocks) against a torchvision-layout ResNet-50 by hand."""

from __future__ import annotations

from pathlib import Path

import torch
from reference_resnet import Bottleneck, ResNet, resnet50
from torch import nn

import nnspec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "resnet50.yaml"
PARAMS = 25_557_032  # torchvision.models.resnet50().parameters(), summed


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_resnet50_example_has_torchvisions_parameter_count() -> None:
    spec = nnspec.load(EXAMPLE).model
    assert sum(i.params for i in nnspec.infer_shapes(spec)) == PARAMS
    assert _count(resnet50()) == PARAMS
    repeats = [layer.repeat for layer in spec.layers if layer.kind == "block"]
    assert repeats == [3, 4, 6, 3]


def test_resnet50_matches_the_hand_written_bottleneck_resnet_after_copying_weights() -> None:
    ours = nnspec.build_model(nnspec.load(EXAMPLE).model)
    ref = resnet50()
    assert _count(ours) == _count(ref) == PARAMS
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert [v.shape for v in ours_sd.values()] == [v.shape for v in ref_sd.values()]
    # non-trivial batch-norm statistics, so eval mode exercises running_mean/var too
    gen = torch.Generator().manual_seed(1)
    stats = {k: torch.rand(v.shape, generator=gen) + 0.5 for k, v in ours_sd.items()
             if k.endswith(("running_mean", "running_var"))}  # fmt: skip
    ours.load_state_dict({**ours_sd, **stats})
    ref.load_state_dict(dict(zip(ref_sd, ours.state_dict().values(), strict=True)))  # in order
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), ref.eval()(x), rtol=0, atol=0)
        # train mode: batch statistics, and the running stats updated identically
        torch.testing.assert_close(ours.train()(x), ref.train()(x), rtol=0, atol=0)
    for (k, a), b in zip(ours.state_dict().items(), ref.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def test_a_bottleneck_stage_projects_its_shortcut_only_where_the_shape_changes() -> None:
    keys = set(nnspec.build_model(nnspec.load(EXAMPLE).model).state_dict())
    # stage 1's first block widens 64 -> 256 at stride 1: a projection; its second does not
    assert "layers.2.0.shortcut.op.weight" in keys
    assert "layers.2.1.shortcut.op.weight" not in keys
    assert "layers.5.0.body.1.op.weight" in keys  # the stride-2 3x3 conv of stage 4
    ref = ResNet((1, 1, 1, 1), block=Bottleneck)
    assert ref.blocks[0].down is not None and ref.blocks[1].down is not None
