"""Canonical YAML out: every field written, defaults filled in, ``kind:`` mappings, exact floats.

``loads(dump(spec)) == spec`` for every valid spec (tested with Hypothesis). Floats are written
with Python's shortest round-trip repr, so ``0.1`` stays ``0.1`` and ``3e-4`` reads back
bit for bit.
"""

from __future__ import annotations

import io
import re
from typing import Any

from pydantic import BaseModel

__all__ = ["dump", "dump_data", "dumps_data"]

# Strings a YAML 1.1 reader (PyYAML, OmegaConf under Hydra) would turn into bools or nulls: quote
# them so the dumped spec means the same to every reader.
_YAML11_SPECIAL = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|~)$")
_FLOW_MAX_ITEMS = 4


def dump_data(spec: BaseModel) -> dict[str, Any]:
    """Canonical plain data of a spec: dicts, lists and scalars, every default filled in.

    Example:
        >>> from nnspec.spec import ModelSpec
        >>> dump_data(ModelSpec(input_shape=(4,), layers=[{"linear": 2}]))["layers"][0]["kind"]
        'linear'
    """
    # Validate the dump once more: a default that is not of its field's type (`10` on a float
    # field) is kept as is by pydantic, but would read back as `10.0`; this makes dump canonical.
    data = spec.model_dump(mode="python", round_trip=True)
    return _plain(type(spec).model_validate(data).model_dump(mode="python", round_trip=True))


def _plain(value: Any) -> Any:
    # python mode keeps inf/nan as floats (json mode would turn them into null); lists for tuples.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="python", round_trip=True))
    return value


def dump(spec: BaseModel) -> str:
    """The canonical YAML text of ``spec``.

    Example:
        >>> from nnspec.spec import ModelSpec
        >>> print(dump(ModelSpec(input_shape=(4,), layers=[{"linear": 2}])).splitlines()[0])
        input_shape: [4]
    """
    return dumps_data(dump_data(spec))


def dumps_data(data: Any) -> str:
    """YAML text of plain data (block mappings; short scalar lists and mappings in flow style)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.width = 4096  # never fold long strings
    yaml.indent(mapping=2, sequence=4, offset=2)
    # Write `null` rather than ruamel's empty value: `target:` reads like a forgotten value.
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    stream = io.StringIO()
    yaml.dump(_styled(data), stream)
    return stream.getvalue()


def _is_leaf(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _styled(value: Any) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import SingleQuotedScalarString

    if isinstance(value, dict):
        # `kind` first: it says what the rest means (pydantic puts inherited fields first)
        keys = sorted(value, key=lambda k: k != "kind")
        out = CommentedMap((k, _styled(value[k])) for k in keys)
        if not value or (len(value) <= _FLOW_MAX_ITEMS and all(map(_is_leaf, value.values()))):
            out.fa.set_flow_style()
        return out
    if isinstance(value, list):
        seq = CommentedSeq(_styled(v) for v in value)
        if all(map(_is_leaf, value)):
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, str) and _YAML11_SPECIAL.match(value):
        return SingleQuotedScalarString(value)
    return value
