"""Safe YAML reading with a source map (ruamel.yaml's round-trip parser keeps line/col marks).

Nothing in a spec is ever imported or executed: every explicit tag is refused (``!!python/...``,
``!!str``, ``!anything``) before any object is constructed, duplicate keys are errors (PyYAML would
silently keep the last one), and the key names Hydra/torchtune use to instantiate classes
(``_target_``, ``_component_``, ``_partial_``) and a top-level ``hydra:`` section are refused.
Anchors, aliases and merge keys (``<<: *base``) are plain data and allowed.
"""

from __future__ import annotations

import datetime as _dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nnspec.errors import Problem, SpecError
from nnspec.io.source import FieldPath, SourceMap

__all__ = ["read_yaml", "parse_yaml", "resolve_input", "FORBIDDEN_KEYS"]

FORBIDDEN_KEYS = frozenset({"_target_", "_component_", "_partial_", "_recursive_", "_convert_"})
YAML_SUFFIXES = (".yaml", ".yml")
# Bounds against alias bombs ("billion laughs"): aliases are expanded into plain data.
MAX_NODES = 1_000_000
MAX_DEPTH = 100


def resolve_input(path_or_text: str | Path) -> tuple[str, str | None]:
    """Return ``(text, filename)``: read a file, or take the string as YAML text.

    A string is a path when it names an existing file or ends with ``.yaml``/``.yml``.
    """
    if isinstance(path_or_text, Path) or _looks_like_path(path_or_text):
        path = Path(path_or_text)
        name = str(path_or_text)
        try:
            return path.read_text(encoding="utf-8"), name
        except FileNotFoundError:
            raise _file_error(name, "file not found", "check the path") from None
        except IsADirectoryError:
            raise _file_error(
                name, "is a directory, not a spec file", "name a .yaml file"
            ) from None
        except UnicodeDecodeError as e:
            raise _file_error(name, f"is not UTF-8 text ({e.reason})", "save it as UTF-8") from e
        except OSError as e:
            raise _file_error(name, f"cannot be read: {e.strerror}", None) from e
    return path_or_text, None


def _looks_like_path(text: str) -> bool:
    if "\n" in text or len(text) > 4096:
        return False
    if text.strip().endswith(YAML_SUFFIXES):
        return True
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # names too long for the OS, NUL bytes
        return False


def _file_error(name: str, message: str, fix: str | None) -> SpecError:
    return SpecError(Problem(path=(), message=message, fix=fix, file=name))


def read_yaml(path_or_text: str | Path) -> tuple[dict[str, Any], SourceMap]:
    """Read a YAML spec safely: plain data (dicts, lists, scalars) plus its :class:`SourceMap`.

    The data is safety-checked but not validated against the schema.

    Example:
        >>> data, src = read_yaml("model:\\n  input_shape: [4]\\n")
        >>> data["model"]["input_shape"], src.locate(("model", "input_shape"))
        ([4], (None, 2, 16))

    Raises:
        SpecError: missing/unreadable file, invalid or unsafe YAML, or a document that is not a
            mapping; every problem found is reported, with ``file:line:col``.
    """
    text, filename = resolve_input(path_or_text)
    return parse_yaml(text, filename=filename)


def parse_yaml(text: str, *, filename: str | None = None) -> tuple[dict[str, Any], SourceMap]:
    """Like :func:`read_yaml` for YAML text already in memory."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        _refuse_tags(text, filename)
        doc = _rt_yaml().load(text)
    except MarkedYAMLError as e:
        raise _yaml_error(e, text, filename) from None
    except YAMLError as e:  # unmarked parser errors (rare): still an nnspec error
        raise SpecError(Problem((), f"invalid YAML: {e}", file=filename, line=1, col=1)) from None
    if doc is None:
        raise SpecError(
            Problem((), "the spec is empty", "a mapping with at least a 'model' section",
                    found="an empty document", file=filename, line=1, col=1)
        )  # fmt: skip
    if not hasattr(doc, "items"):
        raise SpecError(
            Problem((), "a spec must be a mapping of sections", "a mapping (model: ..., ...)",
                    found=_kind_of(doc), file=filename, line=1, col=1)
        )  # fmt: skip
    converter = _Converter(filename)
    data = converter.convert(doc, ())
    if converter.problems:
        raise SpecError(converter.problems)
    return data, SourceMap(filename, converter.marks)


def _rt_yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    return yaml


def _refuse_tags(text: str, filename: str | None) -> None:
    """Scan the parser events and refuse every explicit tag before anything is constructed."""
    problems = []
    for event, path in _events_with_paths(text):
        tag = getattr(event, "tag", None)
        if tag is not None:
            short = str(tag).replace("tag:yaml.org,2002:", "!!")
            mark = event.start_mark
            problems.append(
                Problem(path, f"YAML tag '{short}' is not allowed: specs are plain data",
                        "plain YAML (mappings, lists, strings, numbers)", found=short,
                        fix="remove the tag", file=filename, line=mark.line + 1,
                        col=mark.column + 1)
            )  # fmt: skip
    if problems:
        raise SpecError(problems)


def _events_with_paths(text: str) -> Iterator[tuple[Any, FieldPath]]:
    """ruamel's parser events, each with the field path of the node it starts."""
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent, NodeEvent

    # One frame per open collection: [path, next key or index, expecting a key?]
    stack: list[list[Any]] = []
    for event in _rt_yaml().parse(io.StringIO(text)):
        if isinstance(event, CollectionEndEvent):
            stack.pop()
            _advance(stack)
            continue
        if not isinstance(event, NodeEvent):
            yield event, ()
            continue
        path: FieldPath = ()
        if stack:
            frame = stack[-1]
            if frame[2] is None:  # in a sequence: the next item
                frame[1] += 1
                path = (*frame[0], frame[1])
            elif frame[2]:  # a mapping key: remember it, the value comes next
                path = frame[0]
                frame[1] = str(getattr(event, "value", "?"))
            else:
                path = (*frame[0], frame[1])
        yield event, path
        if isinstance(event, CollectionStartEvent):
            is_map = type(event).__name__.startswith("Mapping")
            stack.append([path, None if is_map else -1, True if is_map else None])
        else:
            _advance(stack)


def _advance(stack: list[list[Any]]) -> None:
    """A node just ended: in a mapping, flip between expecting a key and a value."""
    if stack and stack[-1][2] is not None:
        stack[-1][2] = not stack[-1][2]


def _yaml_error(e: Any, text: str, filename: str | None) -> SpecError:
    """Turn ruamel's marked error (syntax, tab, duplicate key) into a SpecError with file:line."""
    from ruamel.yaml.constructor import DuplicateKeyError

    if isinstance(e, DuplicateKeyError):
        dups = list(_duplicate_keys(text, filename))
        if dups:
            return SpecError(dups)
    mark = e.problem_mark or e.context_mark
    problem = str(e.problem or e.context or "invalid YAML")
    fix = None
    if "\\t" in repr(problem):
        fix = "indent with spaces; YAML does not allow tabs for indentation"
    return SpecError(
        Problem((), f"invalid YAML: {problem}", found=None, fix=fix, file=filename,
                line=mark.line + 1 if mark else 1, col=mark.column + 1 if mark else 1)
    )  # fmt: skip


def _duplicate_keys(text: str, filename: str | None) -> Iterator[Problem]:
    """Every duplicate key (with its path) in the node graph; composing does not refuse them."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    def walk(node: Any, path: FieldPath, depth: int) -> Iterator[Problem]:
        if depth > MAX_DEPTH:
            return
        if isinstance(node, MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                name = str(key.value)
                if name in first and name != "<<":
                    yield Problem(
                        (*path, name), f"duplicate key '{name}' (first defined at line "
                        f"{first[name]})", "each key once per mapping", found=f"'{name}' twice",
                        fix="remove one of them", file=filename, line=key.start_mark.line + 1,
                        col=key.start_mark.column + 1,
                    )  # fmt: skip
                first.setdefault(name, key.start_mark.line + 1)
                yield from walk(value, (*path, name), depth + 1)
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                yield from walk(item, (*path, i), depth + 1)

    yield from walk(_rt_yaml().compose(io.StringIO(text)), (), 0)


class _Converter:
    """ruamel's round-trip objects -> plain Python data, recording marks and unsafe keys."""

    def __init__(self, filename: str | None) -> None:
        self.filename = filename
        self.marks: dict[FieldPath, tuple[int, int]] = {(): (1, 1)}
        self.problems: list[Problem] = []
        self.nodes = 0

    def convert(self, value: Any, path: FieldPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or len(path) > MAX_DEPTH:
            raise SpecError(
                Problem(path, "the spec is too large or too deeply nested (alias expansion?)",
                        f"at most {MAX_NODES} nodes and {MAX_DEPTH} levels", file=self.filename,
                        line=self.marks.get(path[:-1], (1, 1))[0])
            )  # fmt: skip
        if hasattr(value, "items"):
            return self._mapping(value, path)
        if isinstance(value, list):
            out = []
            for i, item in enumerate(value):
                self._mark(value, i, (*path, i), item=True)
                out.append(self.convert(item, (*path, i)))
            return out
        return _scalar(value)

    def _mapping(self, value: Any, path: FieldPath) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, item in value.items():
            key = _key(key)
            sub = (*path, key)
            self._mark(value, key, sub, item=False)
            if key in FORBIDDEN_KEYS:
                self._mark(value, key, sub, item=False, at_key=True)
                self._refuse(sub, f"'{key}' is not allowed: specs never name Python objects to "
                             "import or call", "remove it; use `kind:` to pick a built-in "
                             "or registered component")  # fmt: skip
            elif key == "hydra" and not path:
                self._mark(value, key, sub, item=False, at_key=True)
                self._refuse(sub, "a top-level 'hydra:' section is not allowed in a spec",
                             "put Hydra settings in conf/ or on the command line")  # fmt: skip
            out[key] = self.convert(item, sub)
        return out

    def _refuse(self, path: FieldPath, message: str, fix: str) -> None:
        line, col = self.marks.get(path, (None, None))
        self.problems.append(
            Problem(path, message, found=repr(path[-1]), fix=fix, file=self.filename, line=line,
                    col=col)
        )  # fmt: skip

    def _mark(
        self, parent: Any, key: Any, path: FieldPath, *, item: bool, at_key: bool = False
    ) -> None:
        lc = getattr(parent, "lc", None)
        try:
            if item:
                line, col = lc.item(key)
            else:
                kline, kcol = lc.key(key)
                line, col = lc.value(key)
                if line != kline or at_key:  # block collection below the key: point at the key
                    line, col = kline, kcol
        except (AttributeError, KeyError, TypeError, IndexError):
            return  # merged (<<) keys have no marks of their own: the parent's mark is used
        self.marks[path] = (line + 1, col + 1)


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        from nnspec.io.problems import show_value

        return f"the string {show_value(value)}"
    return f"a {type(value).__name__}"


def _key(key: Any) -> Any:
    if isinstance(key, (str, int, float, bool)) or key is None:
        return _scalar(key)
    return str(key)  # complex keys (`? [a, b]`): keep something hashable; validation refuses it


def _scalar(value: Any) -> Any:
    """Drop ruamel's round-trip subclasses (ScalarFloat, HexInt, ...) for plain Python values."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    from ruamel.yaml.scalarbool import ScalarBoolean

    if isinstance(value, ScalarBoolean):  # an anchored `&flag true` is an int subclass in ruamel
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()  # YAML timestamps: specs have no date fields, keep the text
    return value
