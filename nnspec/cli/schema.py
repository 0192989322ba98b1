"""nnspec schema [--layer=KIND]

Print the JSON Schema of experiment specs. Point an editor at it for completion and checking:
put ``# yaml-language-server: $schema=nnspec.schema.json`` on a spec's first line after
``nnspec schema > nnspec.schema.json``. Layers are a ``oneOf`` of every registered layer kind
(built-in and any registered by imported user code); activations and init presets also accept
their bare names. ``--layer=KIND`` prints one layer kind's schema.

The one-key layer shorthand (``- linear: 128``) is accepted by nnspec but not described here.
"""

from __future__ import annotations

from argparse import Namespace
from typing import Any

from nnspec.cli.common import EXIT_OK, dumps_json

__all__ = ["spec_json_schema", "run"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema of :class:`~nnspec.spec.ExperimentSpec`, layers as a oneOf of registered kinds.

    Example:
        >>> schema = spec_json_schema()
        >>> "linear" in schema["$defs"]["LayerBase"]["discriminator"]["mapping"]
        True
    """
    from pydantic.json_schema import models_json_schema

    from nnspec.spec.experiment import ExperimentSpec
    from nnspec.spec.layers import LAYER_SPECS

    layers = dict(LAYER_SPECS.items())
    user = _user_kinds()
    pairs: list[Any] = [(ExperimentSpec, "validation")]
    pairs += [(cls, "validation") for cls in layers.values()]
    pairs += [(cls, "validation") for classes in user.values() for cls in classes]
    keys, top = models_json_schema(pairs, ref_template="#/$defs/{model}")
    defs = top["$defs"]
    refs = {kind: keys[(cls, "validation")]["$ref"] for kind, cls in layers.items()}
    for ref in refs.values():
        _require_kind(defs[ref.rsplit("/", 1)[1]])
    # `LayerBase` is what pydantic sees behind the layer validator: replace it by the real choice.
    defs["LayerBase"] = {
        "oneOf": [{"$ref": ref} for ref in refs.values()],
        "discriminator": {"propertyName": "kind", "mapping": refs},
    }
    root = keys[(ExperimentSpec, "validation")]["$ref"].rsplit("/", 1)[1]
    schema = {"$schema": SCHEMA_DIALECT, **defs[root], "$defs": defs}
    schema["title"] = "nnspec experiment spec"
    _allow_bare_names(schema, defs)
    _add_user_kinds(schema, defs, {k: [keys[(c, "validation")]["$ref"] for c in v]
                                   for k, v in user.items()})  # fmt: skip
    return schema


def _user_kinds() -> dict[str, list[Any]]:
    """Spec classes that user code registered, by the field that takes them."""
    from nnspec.spec.callbacks import CALLBACK_SPECS
    from nnspec.spec.optim import LOSS_SPECS, OPTIM_SPECS
    from nnspec.spec.schedule import SCHEDULE_SPECS

    tables = {"loss": LOSS_SPECS, "optim": OPTIM_SPECS, "schedule": SCHEDULE_SPECS,
              "callbacks": CALLBACK_SPECS}  # fmt: skip
    return {field: [t[n] for n in t.user_names()] for field, t in tables.items()}


def _add_user_kinds(schema: dict[str, Any], defs: dict[str, Any], refs: dict[str, list[str]]
                    ) -> None:  # fmt: skip
    """User-registered kinds join the choices of their field; trackers are a closed list."""
    from nnspec.spec.callbacks import CALLBACK_SPECS, TRACKERS

    for field in ("loss", "optim", "schedule"):
        extra = [{"$ref": ref} for ref in refs[field]]
        prop = schema["properties"][field]
        if not extra:
            continue
        if "anyOf" in prop or "oneOf" in prop:
            prop.setdefault("anyOf", [{"oneOf": prop.pop("oneOf")}] if "oneOf" in prop else [])
            prop["anyOf"] += extra
        else:  # a plain reference (loss): the built-in class or a user one
            schema["properties"][field] = {"anyOf": [{"$ref": prop.pop("$ref")}, *extra], **prop}
    train = defs["TrainSpec"]["properties"]
    train["trackers"]["items"] = {"type": "string", "enum": list(TRACKERS)}
    names = {"type": "string", "enum": list(CALLBACK_SPECS)}
    defs["CallbackBase"] = {"anyOf": [names, *({"$ref": r} for r in refs["callbacks"])]}


def _require_kind(definition: dict[str, Any]) -> None:
    required = definition.setdefault("required", [])
    if "kind" not in required:
        required.insert(0, "kind")


def _kinds(definition: dict[str, Any]) -> list[str] | None:
    """The names a bare string may take for this definition (None if it needs more than a kind)."""
    if set(definition.get("required", [])) - {"kind"}:
        return None
    kind = definition.get("properties", {}).get("kind", {})
    if "const" in kind:
        return [kind["const"]]
    return list(kind.get("enum", [])) or None


def _allow_bare_names(node: Any, defs: dict[str, Any]) -> None:
    """Where a oneOf picks by ``kind`` (activations, init rules), also accept the bare name."""
    if isinstance(node, list):
        for item in node:
            _allow_bare_names(item, defs)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _allow_bare_names(value, defs)
    options = node.get("oneOf")
    if not options or node is defs.get("LayerBase") or not all("$ref" in o for o in options):
        return
    names: list[str] = []
    for option in options:
        kinds = _kinds(defs.get(option["$ref"].rsplit("/", 1)[1], {}))
        if kinds is None:
            return
        names += kinds
    choice = {"oneOf": node.pop("oneOf")}
    if "discriminator" in node:
        choice["discriminator"] = node.pop("discriminator")
    node["anyOf"] = [{"type": "string", "enum": names}, choice]


def run(args: Namespace) -> int:
    """``nnspec schema``: print the JSON Schema (or one layer kind's with ``--layer=KIND``)."""
    schema = spec_json_schema()
    kind = args.layer
    if kind is not None:
        from nnspec.spec.layers import LAYER_SPECS

        cls = LAYER_SPECS[kind]  # unknown kinds: a RegistryError with did-you-mean (exit 2)
        schema = {"$schema": SCHEMA_DIALECT, **cls.model_json_schema()}
    print(dumps_json(schema))
    return EXIT_OK
