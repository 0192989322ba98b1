"""The README's compiler snippets run as written (docs that are never run rot, STYLE §9)."""

from __future__ import annotations

import re
from pathlib import Path

from nnspec.compile import unregister_layer

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_custom_layer_snippet_runs() -> None:
    (code,) = re.findall(r"```python\n(.*?)```", _section("### Custom layers"), re.S)
    try:
        # dont_inherit: this module's future import must not leak into the snippet
        exec(compile(code, str(README), "exec", dont_inherit=True), {"__name__": "readme"})
    finally:
        unregister_layer("scale")
