"""Optimizer kernels (compile/optim.py): fused where torch has one, the default elsewhere."""

from __future__ import annotations

import pytest
import torch

from nnspec.compile.optim import FUSED, OPTIMIZERS, build_optimizer
from nnspec.spec import ExperimentSpec


def _spec(kind: str, weight_decay: float = 0.01) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "model": {"input_shape": [4], "layers": [{"linear": 8}, {"linear": 3}]},
            "optim": {"kind": kind, "weight_decay": weight_decay},
        }
    )


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_fused_exactly_where_torch_has_a_kernel(kind: str) -> None:
    from nnspec.compile import build_model

    spec = _spec(kind, 0.0 if kind == "rprop" else 0.01)  # torch's Rprop has no weight decay
    opt = build_optimizer(spec.optim, build_model(spec.model), spec.model)
    assert bool(opt.defaults.get("fused")) == (kind in FUSED)
    # the REG-8 groups are kept: decayed weights and undecayed biases
    decays = sorted(g.get("weight_decay", 0.0) for g in opt.param_groups)
    assert decays == ([0.0, 0.0] if kind == "rprop" else [0.0, 0.01])


def test_fused_adamw_matches_the_default_kernel_to_rounding() -> None:
    from nnspec.compile import build_model

    spec = _spec("adamw")
    models = [build_model(spec.model) for _ in range(2)]
    fused = build_optimizer(spec.optim, models[0], spec.model)
    plain = torch.optim.AdamW(
        [
            {"params": [p for p in models[1].parameters() if p.ndim > 1], "weight_decay": 0.01},
            {"params": [p for p in models[1].parameters() if p.ndim <= 1], "weight_decay": 0.0},
        ],
        lr=spec.optim.lr,
    )
    x, y = torch.randn(16, 4, generator=torch.Generator().manual_seed(1)), torch.arange(16) % 3
    for model, opt in zip(models, (fused, plain), strict=True):
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_parameters_on_a_device_without_kernels_use_the_default() -> None:
    spec = _spec("adam")
    model = torch.nn.Linear(4, 3).to(torch.float64).to("meta")
    opt = build_optimizer(spec.optim, model, spec.model)
    assert not opt.defaults.get("fused")
