"""The built-in default experiment: what ``nnspec COMMAND`` uses when no SPEC file is given.

It is the digits CNN example (scikit-learn's bundled 8x8 digits, 10 classes).
``conf/config.yaml`` composes to the same spec (a test of the Hydra layer checks it). Presets are
specs, never modules.
"""

from __future__ import annotations

from nnspec.spec.experiment import ExperimentSpec

__all__ = ["default_experiment", "DEFAULT_EXPERIMENT_DATA"]

# Written as the plain data a user would put in YAML, so the default is validated by the same path
# as a spec file (and cannot drift from what `nnspec dump` of a file would say).
DEFAULT_EXPERIMENT_DATA: dict[str, object] = {
    "name": "digits-cnn",
    "seed": 0,
    "task": "classification",
    "data": {"source": "sklearn:digits"},
    "model": {
        "input_shape": [1, 8, 8],
        "defaults": {"activation": "relu", "norm": "batch", "init": "auto"},
        "layers": [
            {"kind": "conv2d", "out_channels": 32, "kernel_size": 3, "padding": "same"},
            {"kind": "conv2d", "out_channels": 32, "kernel_size": 3, "padding": "same",
             "activation": {"kind": "leaky_relu", "negative_slope": 0.1}},
            {"kind": "max_pool2d", "kernel_size": 2},
            {"kind": "flatten"},
            {"kind": "linear", "out_features": 128, "dropout": 0.3},
            {"kind": "linear", "out_features": 10},  # the head: logits, no norm, no dropout
        ],
    },
    "optim": {"kind": "adamw", "lr": 3.0e-3},
    "schedule": {"kind": "one_cycle"},
    "train": {"epochs": 30},
}  # fmt: skip


def default_experiment() -> ExperimentSpec:
    """The built-in default experiment (the digits CNN).

    Example:
        >>> default_experiment().model.input_shape
        (1, 8, 8)
    """
    return ExperimentSpec.model_validate(DEFAULT_EXPERIMENT_DATA)
