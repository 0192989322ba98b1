"""Lint sees inside blocks (graph models) and points at the block's YAML lines."""

from __future__ import annotations

import nnspec
from nnspec.io import load_with_source

BLOCKS = """\
task: classification
data: {source: sklearn:digits}
model:
  input_shape: [64]
  blocks:
    mlp:
      params: {width: int}
      layers:
        - {linear: $width, activation: tanh}
        - {linear: $width, init: glorot_uniform}
  layers:
    - {block: mlp, args: {width: 32}, repeat: 2}
    - {dropout: 0.2}
    - batch_norm
    - linear: 10
"""


def lint(text: str):
    spec, source = load_with_source(text)
    return nnspec.lint(spec, source)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_rules_look_inside_blocks_and_report_once_per_written_line() -> None:
    found = lint(BLOCKS)
    (act,) = found.by_rule("ACT-2")
    assert act.path == ("model", "blocks", "mlp", "layers", 0, "activation")
    assert act.line == line_of(BLOCKS, "activation: tanh")
    (init,) = found.by_rule("INIT-1")  # glorot before the inherited relu; two repetitions, 1 line
    assert init.path == ("model", "blocks", "mlp", "layers", 1, "init")
    assert "blocks.mlp.layers.1 uses glorot init before relu" in init.reason
    (bn,) = found.by_rule("NORM-6")
    assert bn.path == ("model", "layers", 1) and bn.line == line_of(BLOCKS, "{dropout: 0.2}")


def test_the_same_model_written_sensibly_is_clean() -> None:
    good = BLOCKS.replace("activation: tanh", "activation: relu")
    good = good.replace(", init: glorot_uniform", "").replace("    - {dropout: 0.2}\n", "")
    assert [f.rule for f in lint(good)] == []
