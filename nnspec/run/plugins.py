"""Trusted plugin loading: the user's own modules that register components (losses, optimizers,
schedules, data sources, callbacks, layers, metrics) before a spec is validated.

A spec never names Python code; a plugin is code the *user* chose to run, named outside the spec:

* ``nnspec COMMAND --plugins MODULE`` (repeatable, or comma-separated): a module name importable
  from the environment (``my_project.nn_parts``) or a path to a ``.py`` file (``parts.py``);
* the entry-point group ``nnspec.plugins`` of installed distributions (a package's
  ``pyproject.toml``: ``[project.entry-points."nnspec.plugins"] parts = "my_project.nn_parts"``;
  ``"module:function"`` also calls that function with no arguments after the import).

Both are imported by the CLI before the command runs, and by every sweep trial before it builds
its spec, whatever process the launcher starts it in (forked, forkserver, loky, submitit, Ray):
the launching process passes the list of what it loaded (:func:`plugin_list`) to the trial, which
calls :func:`load_plugins` with it. Loading is idempotent: a module already imported is not run
again. Nothing is read from environment variables or from the spec. See ``docs/plugins.md`` and
``SECURITY.md``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path

from nnspec.errors import NNSpecError

__all__ = ["ENTRY_POINT_GROUP", "PluginError", "discover", "plugin_list", "load_plugins"]

ENTRY_POINT_GROUP = "nnspec.plugins"

_loaded: dict[str, str] = {}  # plugin as given -> module name, for the idempotent reload


class PluginError(NNSpecError):
    """A plugin module could not be found, imported or run (exit 2: the user named it)."""


def discover() -> tuple[str, ...]:
    """The ``nnspec.plugins`` entry points of installed distributions (``module`` or
    ``module:function``), sorted by entry-point name."""
    found = entry_points(group=ENTRY_POINT_GROUP)
    return tuple(ep.value for ep in sorted(found, key=lambda ep: ep.name))


def plugin_list(explicit: Iterable[str] = (), *, entry_points: bool = True) -> tuple[str, ...]:
    """Entry-point plugins, then ``explicit`` ones (comma-separated items split, file paths made
    absolute so a trial in another working directory finds them), without repeats."""
    items = list(discover()) if entry_points else []
    for given in explicit:
        for part in (p.strip() for p in given.split(",")):
            if part:
                items.append(str(Path(part).resolve()) if _is_file(part) else part)
    return tuple(dict.fromkeys(items))


def _is_file(name: str) -> bool:
    return name.endswith(".py") or "/" in name or "\\" in name


def load_plugins(plugins: Iterable[str]) -> tuple[str, ...]:
    """Import each plugin (a module name, ``module:function`` or a ``.py`` path), in order.

    Returns:
        The names of the modules loaded.

    Raises:
        PluginError: a plugin that is missing or fails while loading (its own error is chained).
    """
    names = []
    for plugin in plugins:
        if plugin not in _loaded:
            _loaded[plugin] = _load(plugin)
        names.append(_loaded[plugin])
    return tuple(names)


def _load(plugin: str) -> str:
    target, _, function = plugin.partition(":") if not _is_file(plugin) else (plugin, "", "")
    try:
        if _is_file(target):
            module = _from_file(Path(target))
        else:
            module = importlib.import_module(target)
        if function:
            getattr(module, function)()
    except PluginError:
        raise
    except Exception as e:  # the user's module failed: name it, keep the cause
        raise PluginError(_message(plugin, e)) from e
    return module.__name__


def _from_file(path: Path) -> object:
    if not path.is_file():
        raise PluginError(f"plugin {path}: no such file; fix: give the path of a .py file or "
                          "an importable module name")  # fmt: skip
    name = path.stem
    if not name.isidentifier():
        raise PluginError(f"plugin {path}: '{name}' is not a Python module name; fix: rename "
                          "the file (letters, digits and _)")  # fmt: skip
    present = sys.modules.get(name)
    if present is not None:
        if getattr(present, "__file__", None) == str(path):
            return present
        raise PluginError(
            f"plugin {path}: a module named '{name}' is already imported from "
            f"{getattr(present, '__file__', 'elsewhere')}; fix: rename the file"
        )
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None  # a .py file always has a loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # registered before it runs, as an import would (pickling by name)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _message(plugin: str, error: BaseException) -> str:
    if isinstance(error, ModuleNotFoundError) and error.name and plugin.startswith(error.name):
        fix = ("install it, or give its file: --plugins path/to/module.py (a module name must be "
               "importable from this environment)")  # fmt: skip
    else:
        fix = "fix the plugin module (the error above is its own)"
    return f"plugin '{plugin}' failed to load: {type(error).__name__}: {error}; fix: {fix}"
