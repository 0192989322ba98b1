"""The training plan: task-keyed losses, optimizers and parameter groups, spec rules."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from nnspec.compile.losses import TargetStats, build_loss
from nnspec.compile.optim import OPTIMIZERS, param_groups
from nnspec.compile.plan import compile_plan, steps_per_epoch
from nnspec.errors import SpecError
from nnspec.io import validate
from nnspec.spec import ExperimentSpec, ModelSpec
from nnspec.spec.optim import LOSS_TASKS, OPTIM_CLASSES, LossSpec, OptimKind

MLP = {"input_shape": [4], "layers": [{"linear": 8}, {"linear": 3}]}


def spec(**kw: object) -> ExperimentSpec:
    data = {"model": MLP, **kw}
    return ExperimentSpec.model_validate(data)


# ---- losses (LOSS-1..3, OUT-3/4) ----


@pytest.mark.parametrize(
    ("task", "loss_cls", "width"),
    [
        ("classification", nn.CrossEntropyLoss, 3),
        ("binary", nn.BCEWithLogitsLoss, 1),
        ("multilabel", nn.BCEWithLogitsLoss, 3),
        ("regression", nn.MSELoss, 3),
    ],
)
def test_auto_loss_follows_the_task(task: str, loss_cls: type, width: int) -> None:
    layers = [{"linear": 8}, {"linear": width}]
    plan = compile_plan(spec(task=task, model={"input_shape": [4], "layers": layers}))
    assert type(plan.make_loss(width)) is loss_cls


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("mae", nn.L1Loss),
        ("huber", nn.HuberLoss),
        ("smooth_l1", nn.SmoothL1Loss),
        ("mse", nn.MSELoss),
    ],
)
def test_regression_losses(kind: str, cls: type) -> None:
    loss = build_loss(kind, LossSpec(kind=kind, delta=2.5), 1)  # type: ignore[arg-type]
    assert type(loss) is cls
    if kind in ("huber",):
        assert loss.delta == 2.5
    if kind == "smooth_l1":
        assert loss.beta == 2.5


def test_every_loss_kind_has_a_builder_and_a_task() -> None:
    from nnspec.compile.losses import LOSSES

    assert set(LOSSES) == set(LOSS_TASKS)


def test_label_smoothing_and_balanced_class_weights() -> None:
    stats = TargetStats(torch.tensor([80, 20]), 100)
    loss = build_loss(
        "cross_entropy", LossSpec(label_smoothing=0.1, class_weights="balanced"), 2, stats
    )
    assert loss.label_smoothing == pytest.approx(0.1)
    # sklearn's formula n / (C * count): 100/(2*80), 100/(2*20)
    assert loss.weight.tolist() == pytest.approx([0.625, 2.5])


def test_balanced_pos_weight_is_neg_over_pos() -> None:
    stats = TargetStats(torch.tensor([25.0]), 100)
    loss = build_loss("bce_with_logits", LossSpec(pos_weight="balanced"), 1, stats)
    assert loss.pos_weight.tolist() == pytest.approx([3.0])


def test_explicit_class_weights_need_one_per_class() -> None:
    with pytest.raises(SpecError, match="one weight per output") as e:
        build_loss("cross_entropy", LossSpec(class_weights=(1.0, 2.0)), 3)
    assert e.value.problems[0].path == ("loss", "class_weights")


def test_cross_entropy_on_huge_logits_is_finite() -> None:
    # LOSS-6: logit losses stay finite where softmax + log would overflow.
    logits = torch.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    loss = build_loss("cross_entropy", LossSpec(), 3)(logits, torch.tensor([1]))
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(logits.grad).all()


# ---- spec rules (LOSS-1, OUT-3/4, TRAIN-4) ----


def _problems(data: dict) -> list:
    with pytest.raises(SpecError) as e:
        validate(data)
    return list(e.value.problems)


def test_double_softmax_is_rejected_with_why() -> None:
    layers = [{"linear": 8}, {"linear": 3, "activation": "softmax"}]
    (p,) = _problems({"model": {"input_shape": [4], "layers": layers}})
    assert p.path == ("model", "layers", 1, "activation")
    assert "double activation" in p.message and "cross_entropy" in p.message


def test_trailing_sigmoid_layer_with_bce_is_rejected() -> None:
    layers = [{"linear": 8}, {"linear": 1}, {"kind": "activation", "activation": "sigmoid"}]
    (p,) = _problems({"task": "binary", "model": {"input_shape": [4], "layers": layers}})
    assert p.path == ("model", "layers", 2, "activation")
    assert "sigmoid" in p.message


def test_sigmoid_output_is_fine_for_regression() -> None:
    layers = [{"linear": 8}, {"linear": 1, "activation": "sigmoid"}]
    validate({"task": "regression", "model": {"input_shape": [4], "layers": layers}})


def test_loss_must_fit_the_task() -> None:
    (p,) = _problems({"model": MLP, "loss": {"kind": "mse"}})
    assert p.path == ("loss", "kind")
    assert "does not fit task 'classification'" in p.message


def test_unknown_monitor_suggests_a_name() -> None:
    (p,) = _problems({"model": MLP, "train": {"early_stopping": {"monitor": "val_acc"}}})
    assert p.path == ("train", "early_stopping", "monitor")
    assert "val_accuracy" in p.message


def test_contradicting_mode_is_rejected() -> None:
    es = {"monitor": "val_accuracy", "mode": "min"}
    (p,) = _problems({"model": MLP, "train": {"early_stopping": es}})
    assert p.path == ("train", "early_stopping", "mode")


def test_monitoring_val_needs_a_val_split() -> None:
    split = {"train": 0.9, "val": 0.0, "test": 0.1}
    (p,) = _problems({"model": MLP, "data": {"split": split}})
    assert p.path == ("data", "split", "val")


def test_nesterov_needs_momentum() -> None:
    (p,) = _problems({"model": MLP, "optim": {"kind": "sgd", "nesterov": True, "momentum": 0}})
    assert p.path == ("optim", "nesterov")


def test_mode_auto_resolves_by_metric() -> None:
    plan = compile_plan(spec(train={"early_stopping": {"monitor": "val_accuracy"}}))
    assert (plan.monitor, plan.mode) == ("val_accuracy", "max")
    assert compile_plan(spec()).mode == "min"


# ---- optimizers and parameter groups (OPT-*, REG-8, TRAIN-8) ----


def _model() -> tuple[nn.Module, ModelSpec]:
    from nnspec.compile import build_model

    ms = ModelSpec.model_validate(
        {
            "input_shape": [4],
            "defaults": {"norm": "batch"},
            "layers": [
                {"linear": 8, "trainable": False},
                {"linear": 8, "lr_scale": 0.1},
                {"linear": 3},
            ],
        }
    )
    return build_model(ms, generator=torch.Generator().manual_seed(0)), ms


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_every_optimizer_kind_builds_its_torch_class_with_spec_defaults(kind: OptimKind) -> None:
    plan = compile_plan(spec(optim={"kind": kind}))
    model, _ = _model()
    opt = plan.make_optimizer(model)
    assert type(opt) is OPTIMIZERS[kind]
    defaults = OPTIM_CLASSES[kind]()
    assert opt.defaults["lr"] == defaults.lr
    for field in ("betas", "eps", "momentum", "alpha", "nesterov", "lr_decay"):
        if hasattr(defaults, field):
            want = getattr(defaults, field)
            assert opt.defaults[field] == (tuple(want) if field == "betas" else want)


def test_param_groups_exclude_frozen_and_undecayed_vectors() -> None:
    model, ms = _model()
    groups = param_groups(model, ms, lr=1.0, weight_decay=0.1, decay_all=False)
    in_groups = {id(p) for g in groups for p in g["params"]}
    frozen = list(model.layers[0].parameters())
    assert frozen and all(not p.requires_grad and id(p) not in in_groups for p in frozen)
    for g in groups:
        for p in g["params"]:
            assert (g["weight_decay"] > 0) == (p.ndim > 1)  # biases and BN params: no decay
    scaled = {id(p) for p in model.layers[1].parameters()}
    for g in groups:
        if any(id(p) in scaled for p in g["params"]):
            assert g["lr"] == pytest.approx(0.1)
            assert all(id(p) in scaled for p in g["params"])


def test_decoupled_weight_decay_leaves_biases_alone() -> None:
    # REG-8: with zero gradients an AdamW step multiplies decayed weights by (1 - lr*wd) only.
    model, _ = _model()
    plan = compile_plan(spec(optim={"kind": "adamw", "lr": 0.1, "weight_decay": 0.5}))
    opt = plan.make_optimizer(model)
    head = model.layers[2].op
    w0, b0 = head.weight.detach().clone(), head.bias.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p) if p.requires_grad else None
    opt.step()
    assert torch.allclose(head.weight, w0 * (1 - 0.1 * 0.5))
    assert torch.equal(head.bias, b0)


def test_l1_penalty_is_lambda_times_sum_abs_weights() -> None:
    model, _ = _model()
    plan = compile_plan(spec(optim={"kind": "adamw", "l1": 0.01}))
    params = plan.penalty(model)
    assert all(p.ndim > 1 and p.requires_grad for p in params)
    want = 0.01 * sum(p.abs().sum() for p in params)
    assert plan.regularization(params).item() == pytest.approx(want.item())


def test_steps_per_epoch_drops_a_single_leftover_and_groups_accumulation() -> None:
    assert steps_per_epoch(1000, 64) == 16
    assert steps_per_epoch(129, 64) == 2  # the leftover of 1 sample is dropped (batch norm)
    assert steps_per_epoch(1000, 64, accumulate=4) == 4


def test_nnspec_compile_is_callable_even_after_importing_the_package() -> None:
    import nnspec
    import nnspec.compile  # binds nnspec.compile to the package

    compiled = nnspec.compile(spec())
    assert compiled.plan.loss_kind == "cross_entropy"
    out = compiled.model(torch.zeros(2, 4))
    loss = compiled.plan.make_loss(3)(out, torch.tensor([0, 1]))
    opt = compiled.plan.make_optimizer(compiled.model)
    sched = compiled.plan.make_schedule(opt, steps_per_epoch=10)
    loss.backward()
    opt.step()
    sched.step_batch()


def test_lr_scale_inside_a_block_template_multiplies_through_its_uses() -> None:
    """lr_scale on a template layer (0.1) times the block use's (0.5): that layer's group gets
    0.05 x lr; the template's other layer 0.5 x lr; the head 1 x lr."""
    from nnspec.compile import build_model

    ms = ModelSpec.model_validate(
        {
            "input_shape": [4],
            "blocks": {
                "pair": {"layers": [{"linear": 8, "lr_scale": 0.1, "name": "slow"}, {"linear": 8}]}
            },
            "layers": [{"block": "pair", "lr_scale": 0.5, "name": "body"}, {"linear": 3}],
        }
    )
    model = build_model(ms, generator=torch.Generator().manual_seed(0))
    groups = param_groups(model, ms, lr=1.0, weight_decay=0.0, decay_all=True)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    by_name = {n: lr_of[id(p)] for n, p in model.named_parameters()}
    slow = [lr for n, lr in by_name.items() if ".slow." in n]
    assert slow and all(lr == pytest.approx(0.05) for lr in slow)
    rest = {lr for n, lr in by_name.items() if ".slow." not in n}
    assert sorted(rest) == pytest.approx([0.5, 1.0])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_compile_and_lint_are_plain_functions_and_their_packages_plain_modules() -> None:
    code = (
        "import sys, types\n"
        "import nnspec.compile.plan, nnspec.lint.engine, nnspec\n"  # submodules first
        "assert nnspec.compile.__module__ == 'nnspec' and nnspec.lint.__name__ == 'lint_spec'\n"
        "for name in ('nnspec.compile', 'nnspec.lint'):\n"
        "    assert type(sys.modules[name]) is types.ModuleType, type(sys.modules[name])\n"
        "    assert not callable(sys.modules[name])\n"
        "from nnspec.compile import compile_spec\n"
        "from nnspec.lint import lint_spec\n"
        "assert compile_spec is sys.modules['nnspec.compile.plan'].compile_spec\n"
        "assert lint_spec is nnspec.lint\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
