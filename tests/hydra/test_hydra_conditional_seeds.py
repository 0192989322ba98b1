"""Conditional search spaces and ``seeds_per_trial`` of the Optuna sweeper (fake trainers)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from nnspec.cli.train import main as train
from nnspec.errors import SpecError
from nnspec.hydra.seeds import train_seeds
from nnspec.hydra.space import make_sampler, parse_space
from nnspec.run.api import RunResult
from nnspec.run.callbacks import Callback

SPACE = [
    "optim=choice(adam, sgd)",
    "optim.lr=tag(log, interval(1e-4, 1e-1))",
    "optim.momentum=interval(0.5, 0.99)",
]
COND = {"optim.momentum": "optim=sgd"}


def _proposals(space: Any, n: int, seed: int = 0) -> list[dict[str, Any]]:
    study = optuna.create_study(sampler=make_sampler("random", space, seed))
    out = []
    for i in range(n):
        trial = space.ask(study)
        out.append(dict(trial.params))
        study.tell(trial, float(i))
    return out


def test_momentum_is_sampled_only_when_optim_is_sgd() -> None:
    params = _proposals(parse_space(SPACE, conditions=COND), 20)
    sgd = [p for p in params if p["optim"] == "sgd"]
    adam = [p for p in params if p["optim"] == "adam"]
    assert sgd and adam
    assert all(0.5 <= p["optim.momentum"] <= 0.99 for p in sgd)
    assert all("optim.momentum" not in p for p in adam)
    assert all("optim.lr" in p for p in params)


def test_nested_and_dotted_condition_keys_mean_the_same() -> None:
    nested = parse_space(SPACE, conditions={"optim": {"momentum": "optim=sgd"}})
    assert nested.conditions == parse_space(SPACE, conditions=COND).conditions


def test_a_space_without_conditions_samples_as_before() -> None:
    space = parse_space(SPACE)
    study = optuna.create_study(sampler=make_sampler("random", space, 3))
    old = [study.ask(space.distributions).params for _ in range(5)]
    assert _proposals(space, 5, seed=3) == old


def test_a_fixed_parent_decides_once() -> None:
    space = parse_space(["optim=sgd", "optim.momentum=interval(0.5, 0.99)"], conditions=COND)
    assert all("optim.momentum" in p for p in _proposals(space, 3))
    space = parse_space(["optim=adam", "optim.momentum=interval(0.5, 0.99)"], conditions=COND)
    assert all(p == {} for p in _proposals(space, 3))


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({"optim.momentum": "optm=sgd"}, "unknown parent 'optm'.*did you mean 'optim'"),
        ({"optim.momentum": "optim=sdg"}, "optim never takes 'sdg'.*did you mean 'sgd'"),
        ({"optim.momentum": "sgd"}, "expected 'parent=value"),
        ({"optim.nesterov": "optim=sgd"}, "needs a swept parameter"),
        ({"optim.momentum": "optim.lr=1", "optim.lr": "optim.momentum=1"}, "cycle"),
    ],
)
def test_a_wrong_condition_is_refused_at_its_key(conditions: dict[str, str], message: str) -> None:
    with pytest.raises(SpecError, match=f"(?s){message}") as info:
        parse_space(SPACE, conditions=conditions)
    assert info.value.problems[0].path[:3] == ("hydra", "sweeper", "conditions")


def test_the_grid_sampler_refuses_conditions() -> None:
    space = parse_space(["optim=adam,sgd", "optim.momentum=0.8,0.9"], conditions=COND)
    with pytest.raises(SpecError, match="cannot skip a parameter"):
        space.grid()


def _seen(run_dir: Path, spec: Any) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    optim = {"kind": spec.optim.kind, "momentum": getattr(spec.optim, "momentum", None)}
    (run_dir / "seen.json").write_text(json.dumps({**optim, "seed": spec.seed}))


def recording_train(
    spec: Any, *, run_dir: Path, base_dir: Path | None = None, callbacks: Sequence[Callback] = ()
) -> RunResult:
    """Records the optimizer each trial got; the loss is its learning rate."""
    _seen(run_dir, spec)
    loss = float(spec.optim.lr)
    return RunResult(run_dir, {}, {"loss": loss}, 1, "val_loss", loss, "min", 0.01, 10, 1)


def test_a_conditional_study_trains_both_branches(in_tmp: Path) -> None:
    argv = [
        "-m",
        "hydra/sweeper=nnspec_optuna",
        "hydra.sweeper.sampler=random",
        "hydra.sweeper.n_trials=8",
        *SPACE,
        "+hydra.sweeper.conditions.optim.momentum='optim=sgd'",
        "hydra.sweep.dir=sw",
    ]
    assert train(argv, train_fn=recording_train) == 0
    seen = [json.loads(p.read_text()) for p in (in_tmp / "sw").glob("*/seen.json")]
    assert len(seen) == 8 and {s["kind"] for s in seen} == {"adam", "sgd"}
    # an sgd trial got a sampled momentum (never the preset's 0.9), an adam trial none at all
    assert all(
        0.5 <= s["momentum"] <= 0.99 and s["momentum"] != 0.9 for s in seen if s["kind"] == "sgd"
    )
    assert all(s["momentum"] is None for s in seen if s["kind"] == "adam")


def seeded_train(
    spec: Any, *, run_dir: Path, base_dir: Path | None = None, callbacks: Sequence[Callback] = ()
) -> RunResult:
    """lr=0.001 has the best single seed (0.1) but the worse mean (0.633); lr=0.01 gives 0.5."""
    _seen(run_dir, spec)
    loss = 0.5 if spec.optim.lr == 0.01 else (0.1 if spec.seed == 0 else 0.9)
    return RunResult(
        run_dir, {"accuracy": 1 - loss}, {"loss": loss}, 1, "val_loss", loss, "min", 0.01, 10, 2
    )


def test_seeds_per_trial_scores_the_mean_and_best_spec_is_the_best_mean(in_tmp: Path) -> None:
    argv = [
        "-m",
        "hydra/sweeper=nnspec_optuna",
        "hydra.sweeper.sampler=grid",
        "hydra.sweeper.seeds_per_trial=3",
        "optim.lr=choice(0.001, 0.01)",
        "hydra.sweep.dir=sw",
    ]
    assert train(argv, train_fn=seeded_train) == 0
    sw = in_tmp / "sw"
    records = {
        r["overrides"][-1]: r
        for r in (json.loads((sw / str(i) / "trial.json").read_text()) for i in range(2))
    }
    low = records["optim.lr=0.001"]
    assert [s["seed"] for s in low["seeds"]] == [0, 1, 2]
    assert [s["objective"] for s in low["seeds"]] == [0.1, 0.9, 0.9]
    assert low["objective"] == pytest.approx(1.9 / 3)
    assert low["val_metrics"]["loss"] == pytest.approx(1.9 / 3) and low["epochs_run"] == 6
    assert records["optim.lr=0.01"]["objective"] == pytest.approx(0.5)
    for i in range(2):  # each seed trained into its own folder with its own seed
        assert [
            json.loads((sw / str(i) / f"seed_{s}" / "seen.json").read_text())["seed"]
            for s in range(3)
        ] == [0, 1, 2]
    best = yaml.safe_load((sw / "best_spec.yaml").read_text())
    assert best["optim"]["lr"] == 0.01 and best["seed"] == 0
    assert "mean over each trial's 3 seeds" in (sw / "sweep_summary.md").read_text()
    assert "NNSPEC_SEEDS_PER_TRIAL" not in (sw / "0" / ".hydra" / "overrides.yaml").read_text()


def test_seeds_per_trial_refuses_a_pruner_and_nonsense(in_tmp: Path) -> None:
    base = ["-m", "hydra/sweeper=nnspec_optuna", "optim.lr=tag(log, interval(1e-4, 1))"]
    assert (
        train(
            [*base, "hydra.sweeper.seeds_per_trial=2", "hydra.sweeper.pruner=median"],
            train_fn=seeded_train,
        )
        == 2
    )
    assert train([*base, "hydra.sweeper.seeds_per_trial=0"], train_fn=seeded_train) == 2
    assert not any(in_tmp.rglob("trial.json"))


def test_a_failing_seed_fails_the_trial(tmp_path: Path) -> None:
    def flaky(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
        if spec.seed == 1:
            raise RuntimeError("seed 1 diverged")
        return seeded_train(spec, run_dir=run_dir)

    from nnspec.hydra.compose import compose

    spec = compose(["optim.lr=0.01"])
    with pytest.raises(RuntimeError, match="seed 1 diverged"):
        train_seeds(flaky, spec, 3, run_dir=tmp_path, base_dir=None)


def test_the_optim_momentum_preset_dry_runs_both_branches(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["-m", "sweep=optim_momentum", "experiment=iris_mlp", "--dry-run", "--dry-run-trials=8"]
    assert train(argv) == 0  # every proposal valid: no adam trial is given a momentum
    rows = [line for line in capsys.readouterr().out.splitlines() if "optim=" in line]
    assert len(rows) == 8
    assert all(("optim.momentum=" in r) == ("optim=sgd" in r) for r in rows)
    assert any("optim=adam" in r for r in rows) and any("optim=sgd" in r for r in rows)
