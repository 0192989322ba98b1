"""Design doctor: static lint of specs against the design-rule catalog.

``lint_spec(spec, source=None)`` (``nnspec.lint`` at the top level) returns a list of
:class:`Finding` (rule id, severity, field path, YAML line, reason, fix). Rules are small
functions in a registry (:data:`RULES`, filled with the built-in rules on the first lint); add one
with :func:`rule`.

Names are imported lazily: the top-level package imports this one up front (``nnspec.lint`` is
also a function there), so it must stay light.

Example:
    >>> import nnspec
    >>> [f.rule for f in nnspec.lint("examples/digits_cnn.yaml")]  # doctest: +SKIP
    []
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnspec._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "lint_spec": "nnspec.lint.engine",
    "lint": "nnspec.lint.engine",  # the old name of lint_spec, until its last callers move
    "RULES": "nnspec.lint.engine",
    "Rule": "nnspec.lint.engine",
    "Hit": "nnspec.lint.engine",
    "LintContext": "nnspec.lint.engine",
    "rule": "nnspec.lint.engine",
    "load_builtin_rules": "nnspec.lint.engine",
    "Finding": "nnspec.lint.finding",
    "LintResult": "nnspec.lint.finding",
    "DataStats": "nnspec.lint.finding",
    "Severity": "nnspec.lint.finding",
    "render_text": "nnspec.lint.render",
    "summary_line": "nnspec.lint.render",
    "announce": "nnspec.lint.render",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports("nnspec.lint", _EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from nnspec.lint.engine import (  # noqa: F401
        RULES,
        Hit,
        LintContext,
        Rule,
        lint,
        lint_spec,
        load_builtin_rules,
        rule,
    )
    from nnspec.lint.finding import DataStats, Finding, LintResult, Severity  # noqa: F401
    from nnspec.lint.render import announce, render_text, summary_line  # noqa: F401
