"""The line of a value in a Hydra group file, so a problem points at the user's file and line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.resources.abc import Traversable
from typing import Any

__all__ = ["locate"]

_PACKAGE = re.compile(r"^#\s*@package\s+(\S+)", re.MULTILINE)


def locate(file: Traversable, group: str, path: Sequence[str]) -> tuple[int, int] | None:
    """``(line, col)`` of ``path`` (a job-config path) in the group file, or of its nearest
    ancestor the file sets; None when the file sets nothing on that path (or cannot be read).

    A file of package ``_global_`` holds job-config paths; any other holds its group's section.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = file.read_text(encoding="utf-8")
        node = YAML(typ="rt").load(text)
    except (OSError, UnicodeDecodeError, YAMLError):
        return None
    head = _PACKAGE.search("\n".join(text.splitlines()[:3]))
    package = head.group(1) if head else group
    inner = list(path) if package == "_global_" else _strip(package, path)
    return None if inner is None else _mark(node, inner)


def _strip(package: str, path: Sequence[str]) -> list[str] | None:
    prefix = package.split(".")
    return list(path[len(prefix) :]) if list(path[: len(prefix)]) == prefix else None


def _mark(node: Any, path: Sequence[str]) -> tuple[int, int] | None:
    found: tuple[int, int] | None = None
    for part in path:
        if isinstance(node, dict) and part in node:
            line, col = node.lc.key(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            line, col = node.lc.item(int(part))
        else:
            return found
        found, node = (line + 1, col + 1), node[part if isinstance(node, dict) else int(part)]
    return found
