"""Config groups shipped in ``nnspec.conf`` and the options each offers."""

from __future__ import annotations

import re
from collections.abc import Mapping

from nnspec.errors import Problem, SpecError, did_you_mean
from nnspec.hydra.sources import Sources

__all__ = ["group_options", "group_values", "first_choice", "check_group_options"]


def group_values(value: str) -> list[str]:
    """The options a group override names: ``adam,sgd`` or ``choice(adam, sgd)`` -> both."""
    inner = re.sub(r"^\s*\w+\((.*)\)\s*$", r"\1", value)
    return [v.strip() for v in inner.split(",") if v.strip()]


def first_choice(groups: Mapping[str, str]) -> list[str]:
    """Group selections with a sweep (``optim=adam,sgd``) reduced to their first option."""
    return [f"{g}={group_values(o)[0]}" for g, o in groups.items()]


def group_options(group: str, sources: Sources = Sources()) -> list[str]:
    """Options of a config group: the YAML files of ``nnspec.conf/<group>/`` and of the user's
    folders (``--config-dir``, ``hydra.searchpath``)."""
    folders = sources.folders(group)
    names = {p.name for f in folders if f.is_dir() for p in f.iterdir()}
    return sorted(n[: -len(".yaml")] for n in names if n.endswith(".yaml"))


def check_group_options(
    groups: Mapping[str, str], *, sweep: bool = False, sources: Sources = Sources()
) -> None:
    """Refuse an unknown option (``optim=adamm``) with the list of options and a did-you-mean.

    Raises:
        SpecError: one problem per unknown option.
    """
    problems = []
    for group, value in groups.items():
        options = group_options(group, sources)
        wanted = group_values(value) if sweep else [value]
        for v in wanted:
            if v in options or v == "null":
                continue
            hint = did_you_mean(v, options)
            msg = f"{group}={value}: unknown {group} option '{v}'" + (f"; {hint}" if hint else "")
            problems.append(Problem((group,), msg, fix=f"{group} options: {', '.join(options)}"))
    if problems:
        raise SpecError(problems)
