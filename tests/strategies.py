"""Hypothesis strategies of valid nnspec specs, shared by the test suites.

Every generated spec validates and is shape-valid (MLPs on ``[features]`` and small CNNs on
``[C, H, W]``), so compiler tests can build what the round-trip tests dump. Use
``experiment_specs()`` for whole experiments, ``model_specs()`` for the model section only, and
``*_data()`` for the plain data before validation (mutation tests start from it).

Example:
    >>> from hypothesis import given
    >>> @given(experiment_specs())
    ... def test_something(spec): ...
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume
from hypothesis import strategies as st
from pydantic import ValidationError

from nnspec.spec import ExperimentSpec, ModelSpec

__all__ = [
    "activations",
    "inits",
    "mlp_model_data",
    "cnn_model_data",
    "model_data",
    "model_specs",
    "experiment_data",
    "experiment_specs",
    "names",
]

Data = dict[str, Any]

# Floats in ranges the fields accept; arbitrary bits so the YAML round trip must be exact.
probs = st.floats(min_value=0.0, max_value=0.9, allow_nan=False)
pos_floats = st.floats(min_value=1e-6, max_value=1e3, allow_nan=False, allow_infinity=False)
small = st.integers(min_value=1, max_value=12)

# Strings that YAML readers like to mistake for something else.
_TRICKY = ["yes", "no", "on", "off", "null", "~", "true", "1e3", "0x10", "1_000", ": x", "#c",
           "- a", "[a]", "{a: b}", "'q'", '"q"', "a: b", "2024-01-01", "@x", "&a", "*a",
           "!t"]  # fmt: skip
names = st.one_of(
    st.sampled_from(_TRICKY),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=16),
)

_PARAMS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "leaky_relu": {"negative_slope": st.floats(min_value=0.0, max_value=0.5)},
    "prelu": {"init": st.floats(min_value=0.0, max_value=0.5),
              "num_parameters": st.sampled_from(["shared", "channel"])},
    "rrelu": {"lower": st.just(0.1), "upper": st.floats(min_value=0.2, max_value=0.4)},
    "elu": {"alpha": pos_floats},
    "gelu": {"approximate": st.sampled_from(["none", "tanh"])},
    "softplus": {"beta": pos_floats},
}  # fmt: skip
_HIDDEN_ACTS = ["relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "gelu", "silu", "mish",
                "tanh", "sigmoid", "softplus", "identity"]  # fmt: skip


@st.composite
def activations(draw: st.DrawFn, kinds: list[str] | None = None) -> Any:
    """A hidden activation: a bare name, or a mapping with some of its parameters."""
    kind = draw(st.sampled_from(kinds or _HIDDEN_ACTS))
    params = _PARAMS.get(kind, {})
    if not params or draw(st.booleans()):
        return kind if draw(st.booleans()) else {"kind": kind}
    chosen = draw(st.lists(st.sampled_from(sorted(params)), unique=True, min_size=1))
    return {"kind": kind, **{p: draw(params[p]) for p in chosen}}


def inits() -> st.SearchStrategy[Any]:
    """A hidden-layer init rule (never zeros/constant: refused for hidden weights, INIT-6)."""
    presets = st.sampled_from(["auto", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform",
                               "glorot_normal", "glorot_uniform", "he_truncated_normal",
                               "orthogonal"])  # fmt: skip
    rule = st.fixed_dictionaries(
        {"kind": st.just("variance_scaling")},
        optional={"scale": pos_floats, "mode": st.sampled_from(["fan_in", "fan_out", "fan_avg"]),
                  "distribution": st.sampled_from(["normal", "truncated_normal", "uniform"])},
    )  # fmt: skip
    return st.one_of(presets, rule)


def _weight_options(draw: st.DrawFn) -> Data:
    options = {
        "activation": activations(),
        "norm": st.sampled_from(["batch", "layer", "none"]),
        "dropout": probs,
        "init": inits(),
        "bias": st.booleans(),
        "trainable": st.booleans(),
        "lr_scale": pos_floats,
    }
    chosen = draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=4))
    return {k: draw(options[k]) for k in chosen}


def _head(draw: st.DrawFn, out: int) -> Data:
    head: Data = {"kind": "linear", "out_features": out}
    if draw(st.booleans()):
        head["init"] = draw(st.sampled_from(["glorot_uniform", "glorot_normal", "lecun_normal"]))
    return head


@st.composite
def mlp_model_data(draw: st.DrawFn, n_out: int | None = None) -> Data:
    """An MLP on ``[features]``: linear layers (with options), plain norm/dropout layers, a head."""
    layers: list[Any] = []
    for _ in range(draw(st.integers(0, 4))):
        choice = draw(st.sampled_from(["linear", "linear", "short", "dropout", "batch_norm",
                                       "layer_norm", "activation", "identity"]))  # fmt: skip
        if choice == "linear":
            layers.append({"kind": "linear", "out_features": draw(small), **_weight_options(draw)})
        elif choice == "short":
            layers.append({"linear": draw(small)})  # the one-key shorthand
        elif choice == "dropout":
            layers.append({"kind": "dropout", "p": draw(probs)})
        elif choice == "activation":
            layers.append({"kind": "activation", "activation": draw(activations())})
        else:
            layers.append({"kind": choice})
    layers.append(_head(draw, n_out or draw(small)))
    return {"input_shape": [draw(small)], "defaults": _defaults(draw), "layers": layers}


def _defaults(draw: st.DrawFn) -> Data:
    options = {"activation": activations(), "norm": st.sampled_from(["batch", "layer", "none"]),
               "dropout": probs, "init": inits()}  # fmt: skip
    chosen = draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=3))
    return {k: draw(options[k]) for k in chosen}


@st.composite
def cnn_model_data(draw: st.DrawFn, n_out: int | None = None) -> Data:
    """A small CNN on ``[C, H, W]``: conv2d/pool layers that fit, flatten, linear head."""
    size = start = draw(st.integers(4, 10))
    layers: list[Any] = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()) or size < 2:
            conv: Data = {"kind": "conv2d", "out_channels": draw(st.integers(1, 6))}
            if draw(st.booleans()):
                conv |= {"kernel_size": draw(st.sampled_from([1, 3])), "padding": "same"}
            else:
                kernel = draw(st.integers(1, min(3, size)))
                conv |= {"kernel_size": kernel}
                size = size - kernel + 1
            layers.append(conv | _weight_options(draw))
        else:
            layers.append({"kind": draw(st.sampled_from(["max_pool2d", "avg_pool2d"])),
                           "kernel_size": 2})  # fmt: skip
            size //= 2
    layers.append({"kind": "flatten"})
    layers.append(_head(draw, n_out or draw(small)))
    shape = [draw(st.integers(1, 3)), start, start]
    return {"input_shape": shape, "defaults": _defaults(draw), "layers": layers}


def model_data(n_out: int | None = None) -> st.SearchStrategy[Data]:
    """MLP or CNN model data."""
    return st.one_of(mlp_model_data(n_out), cnn_model_data(n_out))


def model_specs() -> st.SearchStrategy[ModelSpec]:
    """Validated, shape-valid :class:`ModelSpec` objects."""
    return model_data().map(ModelSpec.model_validate)


_OPTIM = {
    "sgd": {"momentum": probs, "nesterov": st.just(False), "dampening": probs},
    "adam": {"amsgrad": st.booleans(), "eps": pos_floats},
    "adamw": {"weight_decay": probs},
    "nadam": {}, "radam": {}, "rmsprop": {"centered": st.booleans()}, "adamax": {},
    "adagrad": {"lr_decay": probs},
}  # fmt: skip
_SCHEDULE = {
    "constant": {}, "step": {"step_epochs": pos_floats, "gamma": st.floats(0.01, 1.0)},
    "multistep": {"milestones": st.lists(st.floats(0.05, 0.95), min_size=1, max_size=3)},
    "exponential": {"gamma": st.floats(0.5, 1.0)}, "cosine": {"min_lr_ratio": probs},
    "one_cycle": {"pct_start": st.floats(0.05, 0.9)}, "reduce_on_plateau": {"patience": small},
}  # fmt: skip
_SPLITS = [(0.7, 0.2, 0.1), (0.8, 0.1, 0.1), (0.6, 0.2, 0.2), (0.5, 0.25, 0.25)]


@st.composite
def _section(draw: st.DrawFn, table: dict[str, dict[str, Any]]) -> Data:
    kind = draw(st.sampled_from(sorted(table)))
    params = table[kind]
    chosen = draw(st.lists(st.sampled_from(sorted(params)), unique=True)) if params else []
    return {"kind": kind, **{p: draw(params[p]) for p in chosen}}


@st.composite
def experiment_data(draw: st.DrawFn) -> Data:
    """Plain data of a valid classification experiment (YAML-shaped: lists, dicts, scalars)."""
    optim = draw(_section(_OPTIM))
    if draw(st.booleans()):
        optim["lr"] = draw(st.one_of(pos_floats, st.just("auto")))
    train, val, test = draw(st.sampled_from(_SPLITS))
    source = draw(st.sampled_from(["sklearn:digits", "sklearn:iris", "sklearn:wine"]))
    ignore = draw(st.lists(st.sampled_from(["REG-4", "OPT-9", "INIT-6"]), unique=True))
    data: Data = {
        "name": draw(names),
        "seed": draw(st.integers(0, 2**31)),
        "data": {
            "source": source,
            "split": {"train": train, "val": val, "test": test},
            "batch_size": draw(st.integers(1, 512)),
        },
        "model": draw(model_data()),
        "optim": optim,
        "schedule": draw(_section(_SCHEDULE)),
        "train": {"epochs": draw(st.integers(1, 100)), "early_stopping": {"enabled": val > 0}},
        "lint": {"ignore": ignore},
    }
    return data


@st.composite
def experiment_specs(draw: st.DrawFn) -> ExperimentSpec:
    """Validated :class:`ExperimentSpec` objects (rare cross-field conflicts are skipped)."""
    data = draw(experiment_data())
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError:
        assume(False)
        raise  # unreachable: assume(False) stops this example
