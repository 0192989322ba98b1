"""Callbacks and experiment trackers named in the spec (``train.callbacks``, ``train.trackers``).

Both are names, never Python paths. ``train.trackers`` picks from nnspec's trackers
(:data:`TRACKERS`: tensorboard, mlflow, wandb; each needs its extra installed). ``train.callbacks``
lists callbacks that user code registered (``nnspec.register_callback``), each by name or as
``{kind: NAME, field: value}`` with the fields of its spec class; the run layer builds them.
"""

from typing import Annotated, Any, Final

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from nnspec.errors import did_you_mean
from nnspec.registry import Registry
from nnspec.spec.base import Spec
from nnspec.spec.kinds import registered

__all__ = [
    "CallbackBase",
    "CALLBACK_SPECS",
    "CallbackField",
    "TRACKERS",
    "TrackerName",
    "TRACKER_EXTRAS",
]


class CallbackBase(Spec):
    """Base of user-registered callback specs: declare ``kind: Literal["<name>"] = "<name>"`` and
    the callback's own fields (its factory receives them as keywords)."""

    kind: str = Field(description="The name the callback was registered under.")


CALLBACK_SPECS: Registry[type[CallbackBase]] = Registry("callback")
"""Callback name -> spec class; user code adds entries (``nnspec.register_callback``)."""
CALLBACK_SPECS.seal()

CallbackField = Annotated[CallbackBase, *registered(CALLBACK_SPECS, "callback", bare=True)]
"""One ``train.callbacks`` item: a registered name, or ``{kind: NAME, ...}``."""

TRACKER_EXTRAS: Final = {
    "tensorboard": "pip install 'nnspec[tensorboard]'",
    "mlflow": "pip install 'nnspec[mlflow]'",
    "wandb": "pip install 'nnspec[wandb]'",
}
TRACKERS: Registry[str] = Registry("tracker")
"""Tracker name -> the install command of the extra it needs (the run layer has one tracker
callback per name; a test keeps the tables equal)."""
for _name, _install in TRACKER_EXTRAS.items():
    TRACKERS.register(_name, _install)
TRACKERS.seal()


def _known_tracker(name: str) -> str:
    if name in TRACKERS:
        return name
    hint = did_you_mean(name, TRACKERS)
    raise PydanticCustomError(
        "nnspec_rule",
        "unknown tracker '{name}'" + ("; {hint}" if hint else "") + " (choices: {choices})",
        {"name": name, "hint": hint or "", "choices": ", ".join(TRACKERS)},
    )


TrackerName = Annotated[str, AfterValidator(_known_tracker)]
"""One of :data:`TRACKERS`."""


def unique(items: tuple[Any, ...], what: str) -> tuple[Any, ...]:
    """Refuse a name listed twice (``train.trackers: [mlflow, mlflow]``)."""
    names = [getattr(item, "kind", item) for item in items]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PydanticCustomError(
            "nnspec_rule",
            "{what} listed more than once: {names}; fix: keep one of each",
            {"what": what, "names": ", ".join(twice)},
        )
    return items
