"""Composition + validation: every conf file, presets vs examples, override errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnspec.defaults import default_experiment
from nnspec.errors import SpecError
from nnspec.hydra.compose import compose, load_spec, split_overrides
from nnspec.hydra.groups import group_options
from nnspec.hydra.presets import CONF_DIR, EXAMPLES_DIR, stale_files

GROUPS = ("data", "model", "optim", "schedule", "train", "experiment", "sweep")
# experiment/* files are checked against their examples below (same compositions).
CASES = [(g, o) for g in GROUPS if g != "experiment" for o in group_options(g)]


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert group_options(group), group


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_every_conf_file_composes_and_validates(group: str, option: str) -> None:
    spec = compose([f"{group}={option}"])
    if group in ("optim", "schedule"):
        section = getattr(spec, group)
        assert section.kind in (option, "reduce_on_plateau", "cosine") or option == "default"
    if group == "data":
        assert spec.data.source.split(":")[1] in (option, "classification", "data.csv")


def test_primary_config_composes_to_default_experiment() -> None:
    assert compose() == default_experiment()


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES_DIR.glob("*.yaml")))
def test_experiment_preset_composes_to_example(name: str) -> None:
    assert compose([f"experiment={name}"]) == load_spec(EXAMPLES_DIR / f"{name}.yaml")


def test_conf_is_in_sync_with_the_generator() -> None:
    # conf/ is generated from the specs, defaults and examples: a stale file means someone changed
    # a default or an example without `python -m nnspec.hydra.presets`.
    stale = stale_files()
    assert stale == [], f"conf/ is stale ({stale}): run `python -m nnspec.hydra.presets`"


def test_group_files_are_canonical_so_any_field_overrides_without_plus() -> None:
    spec = compose(["optim.weight_decay=0.1", "train.clip_grad.max_norm=2.5"])
    assert spec.optim.weight_decay == 0.1
    assert spec.train.clip_grad.max_norm == 2.5


def test_group_choice_replaces_the_whole_section() -> None:
    overrides = ["experiment=breast_cancer_mlp", "optim=sgd", "optim.lr=0.05", "train.epochs=20"]
    spec = compose(overrides)
    assert spec.optim.kind == "sgd" and spec.optim.lr == 0.05 and spec.optim.momentum == 0.9
    assert spec.task == "binary" and spec.train.epochs == 20


def test_unknown_key_is_reported_by_nnspec_with_did_you_mean() -> None:
    with pytest.raises(SpecError) as info:
        compose(["optim.lrr=1"])
    problem = info.value.problems[0]
    assert problem.path == ("optim", "lrr")
    assert "optim.lrr=1: unknown field 'lrr'; did you mean 'lr'?" in problem.message


def test_bad_value_names_the_override() -> None:
    with pytest.raises(SpecError) as info:
        compose(["optim.lr=-1"])
    problem = info.value.problems[0]
    assert problem.path == ("optim", "lr")
    assert problem.file == "override 'optim.lr=-1'"
    assert "optim.lr=-1" in str(info.value)


def test_bad_value_from_a_group_file_names_the_file() -> None:
    # iris data with the digits CNN composes, but the split rule is checked on the data file
    with pytest.raises(SpecError) as info:
        compose(["data.split.train=0.9"])
    assert info.value.problems[0].path[:2] == ("data", "split")


def test_target_keys_are_refused() -> None:
    with pytest.raises(SpecError, match="never execute code"):
        compose(["+model._target_=os.system"])


def test_interpolations_are_allowed() -> None:
    spec = compose(["name=${optim.kind}_run"])
    assert spec.name == "adamw_run"


def test_unknown_group_option_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="unknown optim option 'sgdd'"):
        compose(["optim=sgdd"])


def test_user_spec_is_the_primary_config(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text((EXAMPLES_DIR / "iris_mlp.yaml").read_text())
    spec = compose(["train.epochs=5", "optim.weight_decay=0.1"], spec=path)
    assert spec.train.epochs == 5 and spec.optim.weight_decay == 0.1
    assert spec.model == load_spec(path).model
    swapped = compose(["optim=sgd"], spec=path)
    assert swapped.optim.kind == "sgd" and swapped.optim.lr == 0.01


def test_hydra_section_in_a_user_spec_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    text = (EXAMPLES_DIR / "iris_mlp.yaml").read_text() + "hydra:\n  run:\n    dir: /tmp/x\n"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        compose([], spec=path)
    assert "hydra" in str(info.value)


def test_split_overrides_sorts_groups_keys_and_hydra_settings() -> None:
    args = split_overrides(["optim=adam,sgd", "optim.lr=0.1", "hydra/launcher=joblib", "seed=1"])
    assert args.groups == {"optim": "adam,sgd"}
    assert args.keys == ["optim.lr=0.1", "seed=1"]
    assert args.hydra == ["hydra/launcher=joblib"]


def test_public_compose_is_lazily_exported() -> None:
    import nnspec

    assert nnspec.compose(["experiment=iris_mlp", "optim.lr=0.01"]).optim.lr == 0.01


def test_conf_ships_with_an_init_for_pkg_lookup() -> None:
    assert (CONF_DIR / "__init__.py").is_file()
