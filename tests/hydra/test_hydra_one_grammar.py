"""Property: whatever override list, `validate` and `train --cfg job` find the same spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnspec.cli.train import main as train
from nnspec.errors import SpecError
from nnspec.hydra.compose import compose, validate_container
from nnspec.hydra.sources import Sources

WIDE = """# @package _global_
model:
  input_shape: [30]
  layers:
    - {kind: linear, name: hidden, out_features: 64, activation: relu}
    - {kind: dropout, name: drop, p: 0.1}
    - {kind: linear, name: head, out_features: 1}
"""

OVERRIDES = st.lists(
    st.one_of(
        st.floats(1e-5, 1.0, allow_nan=False).map(lambda v: f"optim.lr={v!r}"),
        st.integers(0, 2**16).map(lambda v: f"name={v:#x}"),  # a hex number: Hydra's string
        st.integers(0, 2**16).map(lambda v: f"seed={v}"),
        st.sampled_from(["name=${optim.kind}_${seed}", "train.epochs=${seed}", "name='a, b'"]),
        st.integers(1, 64).map(lambda v: f"model.layers.hidden.out_features={v}"),
        st.floats(0.0, 0.9).map(lambda v: f"model.layers.drop.p={v!r}"),
        st.integers(1, 64).map(lambda v: f"model.layers.0.out_features={v}"),
        st.just("model.input_shape=[30]"),
        st.sampled_from(
            [
                "~optim.weight_decay",
                "~train.clip_grad",
                "optim=sgd",
                "optim=adamw",
                "schedule=cosine",
                "+lint.ignore=[LR-1]",
            ]
        ),
    ),
    max_size=5,
)


@pytest.fixture(scope="module")
def conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("conf")
    (root / "model").mkdir()
    (root / "model" / "wide.yaml").write_text(WIDE)
    return root


def _cfg_job(argv: list[str], capsys: pytest.CaptureFixture[str]) -> object:
    capsys.readouterr()
    code = train(["--cfg", "job", "--resolve", *argv])
    out = capsys.readouterr().out
    return code, yaml.safe_load(out) if code == 0 else None


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(overrides=OVERRIDES)
def test_validate_and_train_cfg_job_compose_the_same_spec(
    overrides: list[str], conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["data=breast_cancer", "model=wide", *dict.fromkeys(overrides)]
    try:
        spec = compose(argv, sources=Sources.of(conf))
    except SpecError as e:  # the config train composes is refused alike (--cfg only prints it)
        code, data = _cfg_job(["--config-dir", str(conf), *argv], capsys)
        if code == 0:
            with pytest.raises(SpecError):
                validate_container(data)
        else:
            assert code == 2, f"validate refused ({e}); train failed otherwise"
        return
    code, data = _cfg_job(["--config-dir", str(conf), *argv], capsys)
    assert code == 0
    assert validate_container(data) == spec
