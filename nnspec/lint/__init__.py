"""Design doctor: static lint of specs against the design-rule catalog.

``lint_spec(spec, source=None)`` (``nnspec.lint`` at the top level) returns a list of
:class:`Finding` (rule id, severity, field path, YAML line, reason, fix). Rules are small
functions in a registry (:data:`RULES`, filled with the built-in rules on the first lint); add one
with :func:`rule`.

The top-level package imports this one up front (``nnspec.lint`` is also a function there), so
it and the modules it re-exports stay free of torch, Hydra and matplotlib.

Example:
    >>> import nnspec
    >>> [f.rule for f in nnspec.lint("examples/digits_cnn.yaml")]  # doctest: +SKIP
    []
"""

from __future__ import annotations

from nnspec.lint.engine import RULES, Hit, LintContext, Rule, lint_spec, load_builtin_rules, rule
from nnspec.lint.finding import DataStats, Finding, LintResult, Severity
from nnspec.lint.render import announce, render_text, summary_line

__all__ = [
    "lint_spec",
    "RULES",
    "Rule",
    "Hit",
    "LintContext",
    "rule",
    "load_builtin_rules",
    "Finding",
    "LintResult",
    "DataStats",
    "Severity",
    "render_text",
    "summary_line",
    "announce",
]
