"""Every LR schedule against its closed form (LR-5..8), step by step."""

from __future__ import annotations

import math

import pytest
import torch

from nnspec.compile.plan import compile_plan
from nnspec.compile.schedules import SCHEDULES, Horizon, build_schedule
from nnspec.spec import ExperimentSpec
from nnspec.spec.schedule import SCHEDULE_CLASSES, ScheduleKind

LR = 0.1
SPE, EPOCHS = 10, 10  # 100 steps
TOTAL = SPE * EPOCHS


def plan_curve(schedule: dict, epochs: int = EPOCHS) -> list[float]:
    spec = ExperimentSpec.model_validate(
        {
            "model": {"input_shape": [2], "layers": [{"linear": 2}]},
            "optim": {"kind": "sgd", "lr": LR, "momentum": 0.9},
            "schedule": schedule,
            "train": {"epochs": epochs},
        }
    )
    return compile_plan(spec).lr_curve(SPE)


def close(curve: list[float], want: list[float]) -> None:
    assert len(curve) == len(want)
    for t, (a, b) in enumerate(zip(curve, want, strict=True)):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), f"step {t}: {a} != {b}"


def test_every_schedule_kind_has_a_builder() -> None:
    assert set(SCHEDULES) == set(SCHEDULE_CLASSES)


def test_constant() -> None:
    close(plan_curve({"kind": "constant"}), [LR] * TOTAL)


def test_step_every_3_epochs() -> None:
    want = [LR * 0.5 ** (t // 30) for t in range(TOTAL)]
    close(plan_curve({"kind": "step", "step_epochs": 3, "gamma": 0.5}), want)


def test_multistep_milestones_are_fractions_of_the_run() -> None:
    # LR-10: fractional milestones on 100 steps fire at steps 50 and 75.
    want = [LR * 0.1 ** ((t >= 50) + (t >= 75)) for t in range(TOTAL)]
    close(plan_curve({"kind": "multistep", "milestones": [0.5, 0.75], "gamma": 0.1}), want)


def test_exponential_matches_torch_exponential_lr_per_epoch() -> None:
    curve = plan_curve({"kind": "exponential", "gamma": 0.8})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    ref = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.8)
    want = []
    for _ in range(EPOCHS):
        want += [opt.param_groups[0]["lr"]] * SPE
        opt.step()
        ref.step()
    close(curve, want)


def test_cosine_closed_form() -> None:
    eta_min = 0.1 * LR
    want = [
        eta_min + 0.5 * (LR - eta_min) * (1 + math.cos(math.pi * t / TOTAL)) for t in range(TOTAL)
    ]
    close(plan_curve({"kind": "cosine", "min_lr_ratio": 0.1}), want)


def test_cosine_with_restarts_closed_form() -> None:
    # 2 restarts with mult 1: three cycles of 33 steps (SGDR).
    t0 = TOTAL // 3
    want = [0.5 * LR * (1 + math.cos(math.pi * (t % t0) / t0)) for t in range(TOTAL)]
    close(plan_curve({"kind": "cosine", "restarts": 2}), want)


def test_linear_warmup_then_cosine() -> None:
    # LR-6: base * start_factor at step 0, base exactly at the end of warmup, monotone in between.
    w, s = 20, 0.01
    rest = TOTAL - w
    want = [LR * (s + (1 - s) * t / w) for t in range(w)]
    want += [0.5 * LR * (1 + math.cos(math.pi * t / rest)) for t in range(rest)]
    curve = plan_curve({"kind": "cosine", "warmup": {"epochs": 2, "start_factor": s}})
    close(curve, want)
    assert curve[w] == pytest.approx(LR)


def test_warmup_as_a_fraction_before_step_decay() -> None:
    w = 10  # 10 % of 100 steps
    want = [LR * (0.1 + 0.9 * t / w) for t in range(w)]
    want += [LR * 0.5 ** ((t - w) // 30) for t in range(w, TOTAL)]
    curve = plan_curve(
        {
            "kind": "step",
            "step_epochs": 3,
            "gamma": 0.5,
            "warmup": {"fraction": 0.1, "start_factor": 0.1},
        }
    )
    close(curve, want)


def test_one_cycle_matches_torch_and_its_key_points() -> None:
    curve = plan_curve({"kind": "one_cycle"})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR, momentum=0.9)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=TOTAL)
    want = []
    for _ in range(TOTAL):
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    close(curve, want)
    # LR-7: starts at max/25, peaks at max at 30 % of the run, ends at max/(25*1e4)
    assert curve[0] == pytest.approx(LR / 25)
    assert max(curve) == pytest.approx(LR) and curve.index(max(curve)) == 29
    assert curve[-1] == pytest.approx(LR / 25 / 1e4, rel=1e-3)


def test_reduce_on_plateau_cuts_after_patience_plus_one_bad_epochs() -> None:
    from nnspec.spec.schedule import ReduceOnPlateau

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    sched = build_schedule(ReduceOnPlateau(patience=2, factor=0.1), opt, Horizon(SPE, TOTAL))
    lrs = []
    for loss in [1.0, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]:
        sched.step_epoch({"val_loss": loss}, warmup_done=True)
        lrs.append(opt.param_groups[0]["lr"])
    # improving at epoch 2; epochs 3, 4 are within patience; the 3rd bad epoch (5) reduces.
    assert lrs[:4] == pytest.approx([LR] * 4)
    assert lrs[4] == pytest.approx(LR * 0.1)


def test_one_cycle_refuses_an_extra_warmup() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="own warm-up"):
        SCHEDULE_CLASSES["one_cycle"].model_validate({"warmup": {"epochs": 1}})


@pytest.mark.parametrize("kind", sorted(SCHEDULE_CLASSES))
def test_schedule_state_round_trips(kind: ScheduleKind) -> None:
    # Exact resume needs the scheduler state to survive a checkpoint.
    spec = SCHEDULE_CLASSES[kind]()
    opt = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=LR)
    a = build_schedule(spec, opt, Horizon(SPE, TOTAL))
    for _ in range(17):
        opt.step()
        a.step_batch()
    state = a.state_dict()
    opt2 = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=LR)
    b = build_schedule(spec, opt2, Horizon(SPE, TOTAL))
    opt2.load_state_dict(opt.state_dict())
    b.load_state_dict(state)
    for _ in range(5):
        opt.step()
        opt2.step()
        a.step_batch()
        b.step_batch()
        assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]
