"""The Optuna sweeper's search-space grammar, samplers and study bookkeeping (no Hydra run)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hydra_plugins.nnspec_optuna_sweeper.sweeper import fail_stale_running, finished_trials
from nnspec.errors import SpecError
from nnspec.hydra.space import SAMPLERS, make_sampler, parse_space, to_override


def test_grammar_maps_to_distributions() -> None:
    space = parse_space(
        ["optim=choice(adam,sgd)", "train.epochs=3"],
        {
            "optim.lr": "tag(log, interval(1e-4, 1e-1))",
            "optim.weight_decay": "interval(0.0, 0.1)",
            "model.layers.0.out_features": "range(16, 129, 16)",
            "seed": "0,1,2",
        },
    )
    d = space.distributions
    assert d["optim"] == CategoricalDistribution(["adam", "sgd"])
    assert d["optim.lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert d["optim.weight_decay"] == FloatDistribution(0.0, 0.1)
    assert d["model.layers.0.out_features"] == IntDistribution(16, 128, step=16)
    assert d["seed"] == CategoricalDistribution(["0", "1", "2"])
    assert space.fixed == ["train.epochs=3"]


def test_command_line_wins_over_params() -> None:
    space = parse_space(["optim.lr=0.5"], {"optim.lr": "interval(0.1, 1.0)"})
    assert space.distributions == {} and space.fixed == ["optim.lr=0.5"]


def test_float_overrides_round_trip_exactly() -> None:
    assert to_override("optim.lr", 0.1 + 0.2) == "optim.lr=0.30000000000000004"


def test_grid_needs_discrete_values() -> None:
    grid = parse_space(["optim=adam,sgd", "train.epochs=range(1,3)"]).grid()
    assert grid == {"optim": ["adam", "sgd"], "train.epochs": [1, 2]}
    with pytest.raises(SpecError, match="continuous"):
        parse_space(["optim.lr=interval(0.1, 1.0)"]).grid()


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_proposes_values_in_the_space(name: str) -> None:
    space = parse_space(["optim.lr=interval(0.1, 1.0)"] if name != "grid" else ["seed=1,2"])
    study = optuna.create_study(sampler=make_sampler(name, space, seed=0))
    for i in range(3 if name != "grid" else 2):
        trial = study.ask(space.distributions)
        overrides = space.overrides(trial.params)
        assert len(overrides) == 1
        study.tell(trial, float(i))


def test_unknown_sampler_is_refused() -> None:
    with pytest.raises(ValueError, match="choices: tpe"):
        make_sampler("bayes", parse_space([]), 0)


def test_unknown_sampler_is_a_spec_error_with_a_suggestion() -> None:
    with pytest.raises(SpecError) as info:
        make_sampler("tpee", parse_space([]), 0)
    (problem,) = info.value.problems
    assert problem.path == ("hydra", "sweeper", "sampler")
    assert problem.fix == "did you mean 'tpe'?"


def test_running_trials_of_a_crash_are_failed_on_resume(tmp_path: Path) -> None:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "j.log")))
    study = optuna.create_study(study_name="s", storage=storage)
    done = study.ask({"x": FloatDistribution(0, 1)})
    study.tell(done, 0.5)
    study.ask({"x": FloatDistribution(0, 1)})  # never told: the process "crashed"
    reopened = optuna.load_study(
        study_name="s", storage=JournalStorage(JournalFileBackend(str(tmp_path / "j.log")))
    )
    assert fail_stale_running(reopened) == 1
    states = [t.state for t in reopened.get_trials()]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]
    assert finished_trials(reopened) == 2
