"""The name of a run composed on the command line (its folder: ``<output_dir>/<name>/...``).

The chosen experiment names the run (its ``name``); else the spec file does (its ``name``, or its
stem when it sets none); else the data and model options chosen on the command line
(``data=csv model=mlp`` -> ``csv-mlp``, the other one from the primary config's defaults: nnspec's
``config.yaml`` or the user's ``--config-name``); else the primary config's ``name``. A
``name=...`` override always wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnspec.spec import ExperimentSpec

if TYPE_CHECKING:
    from nnspec.hydra.compose import ParsedArgs

__all__ = ["run_name_override"]

# A plain word: not a sweep (`iris,wine`, `choice(...)`), and safe as an override's value.
_ONE_OPTION = re.compile(r"[\w.-]+")


def run_name_override(
    spec_path: Path | None,
    spec: ExperimentSpec | Mapping[str, Any] | None,
    args: ParsedArgs,
    picked: Callable[[list[str]], Mapping[str, str]] | None = None,
) -> str | None:
    """The ``name=...`` override that names the run, or ``None`` when the name already fits.

    ``picked`` composes group choices and returns the options Hydra picked: the option a run does
    not choose is the one the primary config's defaults list picks.

    Example:
        >>> from nnspec.hydra.compose import split_overrides
        >>> run_name_override(None, None, split_overrides(["data=csv", "model=mlp"]))
        'name=csv-mlp'
    """
    if "experiment" in args.groups or any(_key(k) == "name" for k in args.keys):
        return None
    if spec is not None and spec_path is not None:
        named = spec if isinstance(spec, Mapping) else spec.model_fields_set
        if "name" in named or not _ONE_OPTION.fullmatch(spec_path.stem):
            return None  # the spec's own name; a stem Hydra's grammar would split keeps it too
        return f"name={spec_path.stem}"
    chosen = {g: args.groups[g] for g in ("data", "model") if g in args.groups}
    if not chosen or not all(_ONE_OPTION.fullmatch(v) for v in chosen.values()):
        return None
    if len(chosen) < 2:  # the other option is the primary config's
        if picked is None:
            return None
        options = picked([f"{g}={v}" for g, v in chosen.items()])
        chosen = {g: chosen.get(g, options.get(g)) for g in ("data", "model")}
    return f"name={chosen['data']}-{chosen['model']}"


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]
