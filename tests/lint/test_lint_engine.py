"""The lint engine: silencing, --strict, ordering, rule registry, purity."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import nnspec
from nnspec.lint import RULES, Hit, LintResult, render_text, rule, summary_line
from nnspec.spec import ExperimentSpec

NOISY = {
    "model": {
        "input_shape": [4],
        "layers": [{"kind": "linear", "out_features": 16, "dropout": 0.7}, {"linear": 3}],
    },
    "optim": {"kind": "adam", "lr": 1e-3, "weight_decay": 0.01},
    "train": {"clip_grad": {"kind": "value"}},
}


def spec(**lint: object) -> ExperimentSpec:
    return ExperimentSpec.model_validate({**NOISY, "lint": lint})


def test_ignore_silences_by_id_and_by_name_and_reports_the_silence() -> None:
    loud = nnspec.lint(spec())
    assert {f.rule for f in loud} == {"REG-4", "OPT-9", "TRAIN-6"}
    quiet = nnspec.lint(spec(ignore=["REG-4", "adam-coupled-weight-decay"]))
    assert [f.rule for f in quiet] == ["TRAIN-6"]
    assert sorted(f.rule for f in quiet.silenced) == ["OPT-9", "REG-4"]
    assert all(f.silenced for f in quiet.silenced)
    assert summary_line(quiet) == "1 info; silenced by lint.ignore: OPT-9, REG-4"


def test_strict_turns_warnings_into_errors_and_keeps_infos() -> None:
    normal, strict = nnspec.lint(spec()), nnspec.lint(spec(), strict=True)
    assert normal.errors == []
    assert {f.rule for f in strict.errors} == {"REG-4", "OPT-9"}
    assert [f.severity for f in strict if f.rule == "TRAIN-6"] == ["info"]


def test_findings_are_sorted_errors_first_and_render_as_text() -> None:
    result = nnspec.lint(spec(), strict=True)
    assert [f.severity for f in result] == sorted(
        (f.severity for f in result), key=["error", "warning", "info"].index
    )
    text = render_text(result)
    assert "optim.weight_decay: error OPT-9 (adam-coupled-weight-decay)" in text
    assert "  fix: use kind: adamw" in text
    assert text.endswith("2 errors, 1 info")


def test_nnspec_lint_is_callable_after_importing_the_package() -> None:
    import nnspec.lint as module

    assert callable(module)
    assert isinstance(nnspec.lint(spec()), LintResult)


def test_lint_accepts_yaml_text_and_finds_lines(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            model:
              input_shape: [4]
              layers: [{linear: 16}, {linear: 3}]
            optim:
              kind: adam
              weight_decay: 0.01
            """
        )
    )
    (f,) = nnspec.lint(path)
    assert (f.rule, f.line, f.file) == ("OPT-9", 6, str(path))
    assert str(f).startswith(f"{path}:6 optim.weight_decay: warning OPT-9")


def test_a_registered_rule_runs_and_duplicates_are_refused() -> None:
    @rule("PROC-1", "test-always", "info")
    def always(ctx):
        """Always fires (test rule)."""
        yield Hit(("model",), "test reason.", "test fix")

    try:
        assert [f.name for f in nnspec.lint(spec()).by_rule("PROC-1")] == ["test-always"]
        assert RULES["test-always"].summary == "Always fires (test rule)."
        with pytest.raises(nnspec.NNSpecError, match="already registered"):
            rule("PROC-1", "test-always", "info")(always)
    finally:
        RULES.unregister("test-always")


def test_every_rule_has_a_catalog_id_and_summary() -> None:
    nnspec.lint(spec())  # loads the built-in rules
    for name, r in RULES.items():
        assert r.name == name
        assert r.rule.split("-")[0] in {"INIT", "ACT", "ARCH", "OUT", "NORM", "REG", "OPT", "LR",
                                        "TRAIN", "DATA"}, r  # fmt: skip
        assert r.severity in {"error", "warning", "info"} and r.summary


def test_lint_needs_no_torch() -> None:
    code = (
        "import sys, nnspec\n"
        "from nnspec.spec import ExperimentSpec\n"
        f"s = ExperimentSpec.model_validate({NOISY!r})\n"
        "assert len(nnspec.lint(s)) == 3\n"
        "assert 'torch' not in sys.modules, 'lint imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_announce_prints_warnings_for_training_and_respects_quiet_progress() -> None:
    import io

    from nnspec.lint import announce

    out = io.StringIO()
    result = announce(spec(), stream=out)
    text = out.getvalue()
    assert len(result) == 3 and "lint: optim.weight_decay: OPT-9" in text
    assert text.rstrip().endswith("(`nnspec lint SPEC` for details)")
    quiet = ExperimentSpec.model_validate({**NOISY, "train": {"progress": "none"}})
    silent = io.StringIO()
    assert len(announce(quiet, stream=silent)) == 2 and silent.getvalue() == ""
