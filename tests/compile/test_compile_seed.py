"""One seed, one model: ``build_model``, ``nnspec.compile`` and ``train`` agree; builds leave the
caller's RNG (CPU and CUDA) alone."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import nnspec
from nnspec.compile.model import build_model
from nnspec.compile.plan import compile_spec
from nnspec.run import api
from nnspec.run.model import init_head_bias
from nnspec.spec import ExperimentSpec

SEQUENTIAL = {"input_shape": [8], "layers": [{"linear": 16, "dropout": 0.1}, {"linear": 3}]}
GRAPH = {
    "input_shape": [8],
    "layers": [
        {"linear": 16, "name": "a"},
        {"linear": 16, "inputs": ["input"], "name": "b"},
        {"concat": 1, "inputs": ["a", "b"]},
        {"linear": 3},
    ],
}
USER_KIND = {"input_shape": [5, 8], "layers": [{"lstm": 8}, {"linear": 3}]}


def experiment(model: dict[str, Any], seed: int = 7, **extra: Any) -> ExperimentSpec:
    return ExperimentSpec.model_validate({"seed": seed, "model": model, **extra})


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("model", [SEQUENTIAL, GRAPH], ids=["sequential", "graph"])
def test_build_model_and_compile_give_one_model_for_one_seed(model: dict[str, Any]) -> None:
    spec = experiment(model, seed=7)
    built = build_model(spec)  # seeded by spec.seed (was seed 0 whatever the spec said)
    assert same_weights(built, compile_spec(spec).model)
    assert same_weights(built, nnspec.compile(spec).model)
    assert same_weights(built, build_model(spec.model, seed=7))
    assert not same_weights(built, build_model(spec.model, seed=0))
    assert not same_weights(built, build_model(experiment(model, seed=8)))


def test_train_starts_from_build_model_with_the_head_bias_set_from_the_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 8)).astype(np.float32)
    y = np.repeat([0, 1, 2], [60, 20, 10])  # unbalanced, so the prior bias is not zero
    spec = experiment(
        SEQUENTIAL,
        seed=5,
        task="classification",
        data={"source": "user"},
        train={"epochs": 1, "progress": "none", "num_threads": 1, "output_dir": str(tmp_path)},
    )
    seen: dict[str, Any] = {}
    real = api.build_for_data

    def spy(spec: ExperimentSpec, info: Any, y_train: torch.Tensor) -> torch.nn.Module:
        model = real(spec, info, y_train)
        seen.update(state=copy.deepcopy(model.state_dict()), info=info, y=y_train.clone())
        return model

    monkeypatch.setattr(api, "build_for_data", spy)
    nnspec.train(spec, data=(x, y))
    start, plain = seen["state"], build_model(spec).state_dict()
    assert start.keys() == plain.keys()
    differ = {k for k in start if not torch.equal(start[k], plain[k])}
    assert differ == {"layers.1.op.bias"}  # the head bias, and nothing else
    expected = build_model(spec)
    init_head_bias(expected, seen["info"], seen["y"], "cross_entropy")
    assert torch.equal(start["layers.1.op.bias"], expected.state_dict()["layers.1.op.bias"])
    counts = torch.bincount(seen["y"], minlength=3).float()
    assert torch.allclose(start["layers.1.op.bias"].softmax(0), counts / counts.sum(), atol=1e-6)


@pytest.mark.parametrize(
    "model", [SEQUENTIAL, GRAPH, USER_KIND], ids=["sequential", "graph", "lstm"]
)
def test_building_leaves_the_cpu_rng_as_it_was(model: dict[str, Any]) -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    build_model(experiment(model))
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.parametrize(
    "model", [SEQUENTIAL, GRAPH, USER_KIND], ids=["sequential", "graph", "lstm"]
)
def test_building_never_touches_the_cuda_rng(
    model: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without CUDA too: no call that would seed CUDA, or queue a seed for when CUDA starts."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the build touched the CUDA RNG")

    for name in ("manual_seed", "manual_seed_all", "set_rng_state", "set_rng_state_all"):
        monkeypatch.setattr(torch.cuda, name, refuse)
    monkeypatch.setattr(torch.cuda.random, "manual_seed_all", refuse)
    spec = experiment(model)
    assert same_weights(build_model(spec), build_model(spec))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("model", [SEQUENTIAL, GRAPH], ids=["sequential", "graph"])
def test_building_leaves_the_cuda_rng_as_it_was(model: dict[str, Any]) -> None:
    torch.cuda.manual_seed_all(321)
    before = torch.cuda.get_rng_state()
    build_model(experiment(model))
    assert torch.equal(torch.cuda.get_rng_state(), before)
