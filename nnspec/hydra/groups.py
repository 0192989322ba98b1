"""Config groups shipped in ``nnspec.conf`` and the options each offers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

from nnspec.errors import Problem, SpecError, did_you_mean

__all__ = ["group_options", "group_values", "check_group_options"]


def group_values(value: str) -> list[str]:
    """The options a group override names: ``adam,sgd`` or ``choice(adam, sgd)`` -> both."""
    inner = re.sub(r"^\s*\w+\((.*)\)\s*$", r"\1", value)
    return [v.strip() for v in inner.split(",") if v.strip()]


def group_options(group: str) -> list[str]:
    """Options of a config group (the YAML files of ``nnspec.conf/<group>/``)."""
    folder = resources.files("nnspec.conf").joinpath(group)
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def check_group_options(groups: Mapping[str, str], *, sweep: bool = False) -> None:
    """Refuse an unknown option (``optim=adamm``) with the list of options and a did-you-mean.

    Raises:
        SpecError: one problem per unknown option.
    """
    problems = []
    for group, value in groups.items():
        options = group_options(group)
        wanted = group_values(value) if sweep else [value]
        for v in wanted:
            if v in options or v == "null":
                continue
            hint = did_you_mean(v, options)
            msg = f"{group}={value}: unknown {group} option '{v}'" + (f"; {hint}" if hint else "")
            problems.append(Problem((group,), msg, fix=f"{group} options: {', '.join(options)}"))
    if problems:
        raise SpecError(problems)
