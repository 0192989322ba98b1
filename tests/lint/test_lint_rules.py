"""Every lint rule: a spec that triggers it and a near-identical one that does not.

Each case is a YAML text whose triggering line carries the marker ``# <-``; the test asserts the
finding's rule id, path and that line (from the YAML source map), then swaps ``bad`` for ``good``
on that line and asserts the rule is silent.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import nnspec
from nnspec.io import load_with_source
from nnspec.lint import RULES, DataStats, LintResult
from nnspec.spec.layers import LAYER_SPECS

BASE = """\
task: classification
data:
  source: sklearn:iris
  batch_size: {batch}
model:
  input_shape: [4]
  layers:
{layers}
{rest}
"""
MLP = "    - linear: 16\n    - linear: 3"


@dataclass(frozen=True)
class Case:
    name: str  # rule slug
    rule: str  # catalog id
    path: tuple[str | int, ...]
    bad: str  # YAML text; the finding's line holds `# <-`
    swap: tuple[str, str]  # (text on the marked line, replacement that does not trigger)
    stats: DataStats | None = None


TAIL = "    - linear: 3"


def in_model(text: str, lines: str) -> str:
    """Insert ``lines`` at the top of the model section (before ``input_shape``)."""
    return text.replace("  input_shape:", lines + "  input_shape:", 1)


def in_data(text: str, lines: str) -> str:
    """Insert ``lines`` at the top of the data section."""
    return text.replace("data:\n", "data:\n" + lines, 1)


def spec_text(layers: str = MLP, rest: str = "", batch: int = 32) -> str:
    return BASE.format(layers=layers, rest=rest, batch=batch)


CASES = [
    Case(
        "init-activation-mismatch", "INIT-1", ("model", "layers", 0, "init"),
        spec_text("    - {linear: 16, activation: relu, init: glorot_normal}  # <-\n" + TAIL),
        ("glorot_normal", "he_normal"),
    ),
    Case(
        "saturating-hidden-activation", "ACT-2", ("model", "defaults", "activation"),
        in_model(spec_text(MLP + "\n" + TAIL), "  defaults:\n    activation: tanh  # <-\n"),
        ("tanh", "relu"),
    ),
    Case(
        "deep-plain-stack", "ARCH-9", ("model", "layers"),
        in_model(
            spec_text("\n".join(["    - linear: 16"] * 10 + [TAIL])),
            "  defaults: {norm: none}  # <- (the finding is on `layers:`)\n",
        ),
        ("norm: none", "norm: layer"),
    ),
    Case(
        "dropout-on-output", "OUT-5", ("model", "layers", 2),
        spec_text("    - linear: 16\n    - linear: 3\n    - dropout: 0.2  # <-\n    - flatten"),
        ("    - linear: 3\n    - dropout: 0.2  # <-", "    - dropout: 0.2  # <-\n    - linear: 3"),
    ),
    Case(
        "dropout-before-bn", "NORM-6", ("model", "layers", 1),
        spec_text("    - linear: 16\n    - dropout: 0.2  # <-\n    - batch_norm\n    - linear: 3"),
        ("dropout: 0.2", "activation: relu"),
    ),
    Case(
        "batchnorm-in-recurrent", "NORM-3", ("model", "layers", 1),
        spec_text(
            "    - {lstm: 8, output: sequence}\n    - batch_norm  # <-\n    - flatten\n" + TAIL
        ).replace("input_shape: [4]", "input_shape: [2, 2]"),
        ("batch_norm  # <-", "layer_norm  # <-"),
    ),
    Case(
        "bn-tiny-batch", "NORM-5", ("data", "batch_size"),
        spec_text("    - {linear: 16, norm: batch}\n    - linear: 3", batch=4).replace(
            "batch_size: 4", "batch_size: 4  # <-"
        ),
        ("batch_size: 4", "batch_size: 8"),
    ),
    Case(
        "dropout-out-of-range", "REG-4", ("model", "layers", 0, "dropout"),
        spec_text("    - {kind: linear, out_features: 16, dropout: 0.7}  # <-\n    - linear: 3"),
        ("0.7", "0.3"),
    ),
    Case(
        "adam-coupled-weight-decay", "OPT-9", ("optim", "weight_decay"),
        spec_text(rest="optim: {kind: adam, lr: 0.001, weight_decay: 0.01}  # <-"),
        ("kind: adam,", "kind: adamw,"),
    ),
    Case(
        "sgd-without-momentum", "OPT-4", ("optim", "momentum"),
        spec_text(rest="optim: {kind: sgd, lr: 0.1, momentum: 0.0}  # <-"),
        ("momentum: 0.0", "momentum: 0.9"),
    ),
    Case(
        "very-high-momentum", "OPT-7", ("optim", "momentum"),
        spec_text(rest="optim: {kind: sgd, lr: 0.1, momentum: 0.999}  # <-"),
        ("momentum: 0.999", "momentum: 0.95"),
    ),
    Case(
        "lr-out-of-range", "LR-1", ("optim", "lr"),
        spec_text(rest="optim: {kind: adamw, lr: 0.5}  # <-"),
        ("lr: 0.5", "lr: 0.003"),
    ),
    Case(
        "long-run-no-early-stopping", "TRAIN-3", ("train", "epochs"),
        spec_text(rest="train:\n  epochs: 200  # <-\n  early_stopping: {enabled: false}"),
        ("epochs: 200", "epochs: 50"),
    ),
    Case(
        "plateau-patience-vs-es", "LR-8", ("schedule", "patience"),
        spec_text(
            rest="schedule: {kind: reduce_on_plateau, patience: 10}  # <-\n"
            "train: {early_stopping: {patience: 10}}"
        ),
        ("patience: 10}  # <-", "patience: 5}  # <-"),
    ),
    Case(
        "clip-by-value", "TRAIN-6", ("train", "clip_grad", "kind"),
        spec_text(rest="train:\n  clip_grad: {kind: value}  # <-"),
        ("kind: value", "kind: norm"),
    ),
    Case(
        "unscaled-input", "DATA-4", ("data", "standardize"),
        in_data(spec_text(), "  standardize: false  # <-\n"),
        ("standardize: false", "standardize: true"),
    ),
    Case(
        "class-imbalance", "INIT-8", ("loss", "class_weights"),
        spec_text(
            "    - linear: 16\n    - {linear: 3, bias: false}",
            rest="loss:\n  class_weights: none  # <-",
        ),
        ("class_weights: none", "class_weights: balanced"),
        stats=DataStats(class_counts=(90, 30, 10)),
    ),
    Case(
        "unknown-ignore", "LINT", ("lint", "ignore", 0),
        spec_text(rest="lint:\n  ignore: [REG4]  # <-"),
        ("REG4", "REG-4"),
    ),
]  # fmt: skip


def marked_line(text: str) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if "# <-" in line]
    assert len(lines) == 1, text
    return lines[0]


def run(text: str, stats: DataStats | None = None) -> LintResult:
    spec, source = load_with_source(text)
    return nnspec.lint(spec, source, stats=stats)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_rule_triggers_with_id_path_and_line(case: Case) -> None:
    hits = run(case.bad, case.stats).by_rule(case.name)
    assert len(hits) == 1, run(case.bad, case.stats)
    (f,) = hits
    assert (f.rule, f.path) == (case.rule, case.path)
    line = marked_line(case.bad)
    if case.name == "deep-plain-stack":  # the finding points at the `layers:` key
        line = case.bad.splitlines().index("  layers:") + 1
    assert f.line == line
    assert f.reason.endswith(".") and f.fix


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_near_identical_spec_is_silent(case: Case) -> None:
    old, new = case.swap
    assert old in case.bad
    good = case.bad.replace(old, new, 1)
    assert run(good, case.stats).by_rule(case.name) == []


def test_every_registered_rule_has_a_case() -> None:
    covered = {c.name for c in CASES} | {"recurrent-without-clipping"}
    assert set(RULES) <= covered, f"rules without a trigger test: {set(RULES) - covered}"


def test_class_imbalance_is_silent_when_the_head_bias_starts_at_the_prior() -> None:
    text = spec_text(rest="loss:\n  class_weights: none")  # the head has a bias (default)
    assert run(text, DataStats(class_counts=(90, 30, 10))).by_rule("INIT-8") == []


def test_unscaled_input_uses_statistics_when_given() -> None:
    text = spec_text().replace(
        "  source: sklearn:iris\n", "  source: sklearn:iris\n  standardize: false\n"
    )
    wide = DataStats(feature_mean=(0.0, 500.0, 0.0, 0.0), feature_std=(1.0, 200.0, 1.0, 1.0))
    fine = DataStats(feature_mean=(0.0, 0.1, 0.0, 0.0), feature_std=(1.0, 1.2, 1.0, 1.0))
    (f,) = run(text, wide).by_rule("unscaled-input")
    assert "feature 1" in f.reason
    assert run(text, fine).by_rule("unscaled-input") == []


def test_unscaled_images_only_flagged_with_statistics() -> None:
    text = spec_text("    - flatten\n    - linear: 3").replace("[4]", "[1, 2, 2]")
    text = text.replace(
        "  source: sklearn:iris\n", "  source: sklearn:iris\n  standardize: false\n"
    )
    assert run(text).by_rule("unscaled-input") == []
    raw = DataStats(feature_mean=(300.0,) * 4, feature_std=(50.0,) * 4)
    assert len(run(text, raw).by_rule("DATA-4")) == 1


@pytest.mark.skipif("lstm" not in LAYER_SPECS, reason="sequence layers not registered")
def test_recurrent_without_clipping() -> None:
    layers = "    - {kind: lstm, hidden_size: 8}\n    - linear: 3"
    text = spec_text(layers).replace("[4]", "[5, 4]") + "train:\n  clip_grad: {kind: none}  # <-\n"
    try:
        spec, source = load_with_source(text)
    except nnspec.SpecError as e:  # the sequence module's fields may differ; the rule is generic
        pytest.skip(f"lstm spec fields differ: {e}")
    (f,) = nnspec.lint(spec, source).by_rule("recurrent-without-clipping")
    assert (f.rule, f.path, f.line) == ("TRAIN-6", ("train", "clip_grad"), marked_line(text))
    clipped = text.replace("kind: none", "kind: norm")
    assert run(clipped).by_rule("recurrent-without-clipping") == []


def test_every_optimizer_kind_has_a_usual_lr_range() -> None:
    # drift test: LR-1 looks the range up by kind, so a new optimizer needs a row
    from typing import get_args

    from nnspec.lint.rules_train import USUAL_LR
    from nnspec.spec.optim import OPTIM_CLASSES, OptimKind

    assert set(USUAL_LR) == set(OPTIM_CLASSES) == set(get_args(OptimKind))
    assert all(0 < low < high for low, high in USUAL_LR.values())


def test_data4_is_silent_for_token_inputs() -> None:
    """Token ids feeding an embedding are never standardised, so DATA-4 must not fire."""
    import nnspec

    spec = nnspec.loads(
        """
task: classification
data: {source: "synthetic:sequence_count", standardize: false}
model:
  input_shape: [30]
  layers:
    - {kind: embedding, num_embeddings: 10, embedding_dim: 16}
    - {kind: flatten}
    - {linear: 10}
"""
    )
    assert "DATA-4" not in {f.rule for f in nnspec.lint(spec)}
    tabular = spec.model_copy(
        update={"model": nnspec.loads("model: {input_shape: [30], layers: [{linear: 10}]}").model}
    )
    assert "DATA-4" in {f.rule for f in nnspec.lint(tabular)}
