"""Property: lint never fails on a valid spec, and every finding points at a real field."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/strategies.py (shared strategies)
from strategies import experiment_specs

import nnspec
from nnspec.lint import RULES


def resolve(spec: object, path: tuple[str | int, ...]) -> object:
    node = spec
    for item in path:
        node = node[item] if isinstance(item, int) else getattr(node, item)
    return node


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experiment_specs())
def test_lint_of_any_valid_spec_is_well_formed(spec: nnspec.ExperimentSpec) -> None:
    result = nnspec.lint(spec)
    strict = nnspec.lint(spec, strict=True)
    ids = {r.rule for r in RULES.values()} | {"LINT"}
    for f in [*result, *result.silenced]:
        assert f.rule in ids and f.severity in ("error", "warning", "info")
        assert f.reason.endswith(".") and f.fix
        resolve(spec, f.path)  # the path names a field that exists in the spec
    assert len(strict) == len(result)
    assert len(strict.errors) == sum(f.severity in ("error", "warning") for f in result)
