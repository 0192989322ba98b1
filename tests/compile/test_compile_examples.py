"""The example specs: YAML == Python, exact sizes against hand-written torch, loss at init."""

from __future__ import annotations

import math
import runpy
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

import nnspec
from nnspec.compile import build_model, infer_shapes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = ["digits_cnn", "breast_cancer_mlp", "diabetes_mlp"]


def _digits_by_hand() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.LeakyReLU(0.1),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 128, bias=False),
        nn.BatchNorm1d(128),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(128, 10),
    )


def _mlp_by_hand(n_in: int, hidden: tuple[int, int]) -> nn.Module:
    return nn.Sequential(
        nn.Linear(n_in, hidden[0]),
        nn.ReLU(),
        nn.Linear(hidden[0], hidden[1]),
        nn.ReLU(),
        nn.Linear(hidden[1], 1),
    )


BY_HAND: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "digits_cnn": (_digits_by_hand, (1, 8, 8)),
    "breast_cancer_mlp": (lambda: _mlp_by_hand(30, (32, 16)), (30,)),
    "diabetes_mlp": (lambda: _mlp_by_hand(10, (64, 32)), (10,)),
}


@pytest.mark.parametrize("name", NAMES)
def test_python_example_equals_the_yaml(name: str) -> None:
    built = runpy.run_path(str(EXAMPLES / f"{name}.py"))["build"]()
    loaded = nnspec.load(str(EXAMPLES / f"{name}.yaml"))
    assert built == loaded
    assert nnspec.load(nnspec.dump(built)) == loaded


@pytest.mark.parametrize("name", NAMES)
def test_example_matches_the_hand_written_network(name: str) -> None:
    spec = nnspec.load(str(EXAMPLES / f"{name}.yaml")).model
    model = build_model(spec).eval()
    make, shape = BY_HAND[name]
    hand = make().eval()
    infos = infer_shapes(spec)
    n_hand = sum(p.numel() for p in hand.parameters())
    assert sum(p.numel() for p in model.parameters()) == n_hand == sum(i.params for i in infos)
    # Same tensors in the same order: copy them over and the two networks compute the same thing.
    ours, theirs = list(model.state_dict().values()), list(hand.state_dict().values())
    assert [t.shape for t in ours] == [t.shape for t in theirs]
    hand.load_state_dict(dict(zip(hand.state_dict(), ours, strict=True)))
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(0))
    out = model(x)
    assert tuple(out.shape[1:]) == infos[-1].out_shape == model.output_shape
    assert torch.allclose(out, hand(x), atol=1e-6)


def _digits_batch() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    return torch.tensor(x[:512], dtype=torch.float32).reshape(-1, 1, 8, 8), torch.tensor(y[:512])


def test_digits_cnn_loss_at_init_is_ln_10() -> None:
    # INIT-9: the head's Glorot x0.1 draw keeps the logits nearly constant, so the untrained
    # cross-entropy is close to ln C (the head bias is 0 here; the trainer makes it exact).
    spec = nnspec.load(str(EXAMPLES / "digits_cnn.yaml")).model
    x, y = _digits_batch()
    losses = []
    for seed in range(5):
        model = build_model(spec, seed=seed).train()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # dropout masks
            losses.append(nn.functional.cross_entropy(model(x), y).item())
    assert abs(sum(losses) / len(losses) - math.log(10)) < 0.1
