"""Spec fields whose ``kind`` picks a class from a registry (losses, optimizers, schedules,
callbacks): nnspec's own classes plus those user code registered.

A field is annotated with the union of nnspec's built-in classes (its typing and JSON Schema stay
as they were) and wrapped by :func:`registered`: the wrapper looks the ``kind`` up in the field's
:class:`~nnspec.registry.Registry` of spec classes first, so an unknown kind is one problem naming
every registered choice with a did-you-mean, a built-in kind is validated by the union exactly as
before, and a user kind by its own class (its problems keep their field paths). A user instance
serializes through its own class, so ``nnspec.dump`` and the run's ``spec.yaml`` write it back.

No name here names a Python path: a user class is found only because the user's code (or a plugin
module they chose, :mod:`nnspec.run.plugins`) registered it.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, SerializationInfo, WrapSerializer, WrapValidator
from pydantic_core import PydanticCustomError

from nnspec.errors import did_you_mean
from nnspec.registry import Registry, check_name

__all__ = ["registered", "check_spec_class"]


def _unknown(kind: object, table: Registry[Any], what: str) -> PydanticCustomError:
    names = sorted(table)
    if not names:
        return PydanticCustomError(
            "nnspec_rule",
            "unknown {what} '{tag}': no {what} is registered; fix: register it from Python "
            "(nnspec.register_{what}) in a module the run imports (--plugins MODULE)",
            {"what": what, "tag": kind},
        )
    hint = did_you_mean(kind, names)
    # the union's own error type: nnspec.io.problems renders it with the choices and the hint
    return PydanticCustomError(
        "union_tag_invalid",
        "unknown {what} '{tag}'" + ("; {hint}" if hint else ""),
        {
            "what": what,
            "tag": kind,
            "hint": hint or "",
            "discriminator": "'kind'",
            "expected_tags": ", ".join(f"'{n}'" for n in names),
        },
    )


def _validator(
    table: Registry[type[BaseModel]],
    what: str,
    default: str | None,
    bare: bool,
    refused: Mapping[str, str],
) -> Any:
    def validate(value: Any, handler: Any) -> Any:
        if isinstance(value, BaseModel):
            kind = getattr(value, "kind", None)
            ours = isinstance(kind, str) and kind in table and not table.is_builtin(kind)
            return value if ours and isinstance(value, table[kind]) else handler(value)
        if bare and isinstance(value, str):
            value = {"kind": value}
        if not isinstance(value, dict):
            return handler(value)  # the union says what type it wanted
        kind = value.get("kind", default)
        if kind is None:
            return handler(value)  # the union's "needs a 'kind'" problem
        if isinstance(kind, str) and kind in refused:
            raise PydanticCustomError(
                "nnspec_rule", "{what} '{kind}' is not offered: {why}",
                {"what": what, "kind": kind, "why": refused[kind]},
            )  # fmt: skip
        if not isinstance(kind, str) or kind not in table:
            raise _unknown(kind, table, what)
        if table.is_builtin(kind):
            return handler(value)
        return table[kind].model_validate(value)

    return validate


def _serialize(table: Registry[type[BaseModel]]) -> Any:
    def serialize(value: Any, handler: Any, info: SerializationInfo) -> Any:
        kind = getattr(value, "kind", None)
        if isinstance(value, BaseModel) and isinstance(kind, str) and kind in table.user_names():
            return value.model_dump(
                mode=info.mode,
                round_trip=info.round_trip,
                exclude_defaults=info.exclude_defaults,
                exclude_none=info.exclude_none,
            )
        return handler(value)

    return serialize


def registered(
    table: Registry[type[BaseModel]],
    what: str,
    *,
    default: str | None = None,
    bare: bool = False,
    refused: Mapping[str, str] = MappingProxyType({}),
) -> tuple[WrapValidator, WrapSerializer]:
    """Metadata for ``Annotated[<built-in union>, *registered(TABLE, "optimizer")]``.

    Args:
        table: kind -> spec class, nnspec's entries sealed (:meth:`Registry.seal`).
        what: the component's name in messages ("optimizer").
        default: the kind a mapping without ``kind`` has (None: the union decides).
        bare: also accept a bare name (``- my_callback``) for ``{kind: my_callback}``.
        refused: kinds nnspec knows of and does not offer -> why (said instead of "unknown").
    """
    return (
        WrapValidator(_validator(table, what, default, bare, refused)),
        WrapSerializer(_serialize(table), when_used="always"),
    )


def check_spec_class(kind: str, spec_class: object, base: type[BaseModel], what: str) -> None:
    """Refuse a user spec class that cannot stand for ``kind``: it must subclass ``base`` and
    declare ``kind: Literal["<kind>"] = "<kind>"``.

    Raises:
        RegistryError: the name or the class does not fit.
    """
    from nnspec.registry import RegistryError

    check_name(kind, what)
    if not (isinstance(spec_class, type) and issubclass(spec_class, base)):
        raise RegistryError(
            f"register {what} '{kind}': the spec class must subclass nnspec's {base.__name__}; "
            f"found {spec_class!r}"
        )
    field = spec_class.model_fields.get("kind")
    declared = field.default if field is not None else None
    if declared != kind:
        raise RegistryError(
            f"register {what} '{kind}': {spec_class.__name__}.kind must default to '{kind}' "
            f"(write kind: Literal['{kind}'] = '{kind}'); found {declared!r}"
        )
