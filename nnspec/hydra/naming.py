"""The name of a run composed on the command line (its folder: ``<output_dir>/<name>/...``).

The chosen experiment names the run (its ``name``); else the spec file does (its ``name``, or its
stem when it sets none); else the data and model options chosen on the command line
(``data=csv model=mlp`` -> ``csv-mlp``, the other one from ``config.yaml``'s defaults); else the
default config's ``name``. A ``name=...`` override always wins.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from nnspec.hydra.compose import CONF_MODULE, PRIMARY, ParsedArgs
from nnspec.spec import ExperimentSpec

__all__ = ["run_name_override"]

# A plain word: not a sweep (`iris,wine`, `choice(...)`), and safe as an override's value.
_ONE_OPTION = re.compile(r"[\w.-]+")


def run_name_override(
    spec_path: Path | None, spec: ExperimentSpec | None, args: ParsedArgs
) -> str | None:
    """The ``name=...`` override that names the run, or ``None`` when the name already fits.

    Example:
        >>> from nnspec.hydra.compose import split_overrides
        >>> run_name_override(None, None, split_overrides(["data=csv", "model=mlp"]))
        'name=csv-mlp'
    """
    if "experiment" in args.groups or any(_key(k) == "name" for k in args.keys):
        return None
    if spec is not None and spec_path is not None:
        if "name" in spec.model_fields_set or not _ONE_OPTION.fullmatch(spec_path.stem):
            return None  # the spec's own name; a stem Hydra's grammar would split keeps it too
        return f"name={spec_path.stem}"
    chosen = {g: args.groups[g] for g in ("data", "model") if g in args.groups}
    if not chosen or not all(_ONE_OPTION.fullmatch(v) for v in chosen.values()):
        return None
    defaults = _default_options()
    return f"name={chosen.get('data', defaults['data'])}-{chosen.get('model', defaults['model'])}"


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def _default_options() -> dict[str, str]:
    """``group -> option`` of the packaged primary config's defaults list."""
    from ruamel.yaml import YAML

    text = resources.files(CONF_MODULE).joinpath(f"{PRIMARY}.yaml").read_text()
    entries = YAML(typ="safe", pure=True).load(text).get("defaults", [])
    return {k: str(v) for e in entries if isinstance(e, dict) for k, v in e.items()}
