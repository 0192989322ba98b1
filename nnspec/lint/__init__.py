"""Design doctor: static lint of specs against the design-rule catalog (issue 6).

``nnspec.lint(spec, source=None)`` returns a list of :class:`Finding` (rule id, severity, field
path, YAML line, reason, fix). Rules are small functions in a registry (:data:`RULES`); add one
with :func:`rule`.

Example:
    >>> import nnspec
    >>> [f.rule for f in nnspec.lint("examples/digits_cnn.yaml")]  # doctest: +SKIP
    []
"""

import sys
import types
from typing import Any

# Importing the rule modules registers the built-in rules.
from nnspec.lint import rules_model, rules_train  # noqa: F401
from nnspec.lint.engine import RULES, Hit, LintContext, Rule, lint, rule
from nnspec.lint.finding import DataStats, Finding, LintResult, Severity
from nnspec.lint.render import announce, render_text, summary_line

__all__ = [
    "lint",
    "Finding",
    "LintResult",
    "DataStats",
    "Severity",
    "RULES",
    "Rule",
    "Hit",
    "LintContext",
    "rule",
    "render_text",
    "summary_line",
    "announce",
]


class _CallableModule(types.ModuleType):
    """Lets ``nnspec.lint(spec)`` work after ``nnspec.lint`` the package has been imported.

    Importing a submodule binds ``nnspec.lint`` to the package module, shadowing the lazily
    exported function of the same name; making the package callable keeps both spellings valid.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> LintResult:
        return lint(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
