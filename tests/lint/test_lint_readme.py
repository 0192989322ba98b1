"""The Python snippet of the README's "Lint and checks" section runs as documented."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def test_readme_lint_snippet_runs() -> None:
    section = README.read_text().split("## Lint and checks", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    exec(compile(code, "README.md (Lint and checks)", "exec"), {})
