"""Safe YAML reading with a source map (ruamel.yaml's parser keeps line/column marks).

Nothing in a spec is ever imported or executed: every explicit tag that changes what a value would
be (``!!python/...``, ``!!str 3``, ``!anything``) is refused before any object is constructed,
duplicate keys are errors (PyYAML would silently keep the last one), and the key names that
Hydra/torchtune use to instantiate classes (``_target_``, ``_component_``, ``_partial_``) and a
top-level ``hydra:`` section are refused. Anchors, aliases and merge keys (``<<: *base``) are plain
data and allowed.
"""

from __future__ import annotations

import datetime as _dt
import io
from pathlib import Path
from typing import Any

from nnspec.errors import Problem, SpecError
from nnspec.files import file_kind, read_regular
from nnspec.io.source import FieldPath, SourceMap

__all__ = [
    "FORBIDDEN_KEYS",
    "MAX_DEPTH",
    "MAX_EVENTS",
    "MAX_NODES",
    "MAX_SPEC_BYTES",
    "parse_value",
    "parse_yaml",
    "read_yaml",
    "resolve_input",
]

FORBIDDEN_KEYS = frozenset({"_target_", "_component_", "_partial_", "_recursive_", "_convert_"})
YAML_SUFFIXES = (".yaml", ".yml")
# Bounds against alias bombs ("billion laughs"): aliases are expanded into plain data.
MAX_NODES = 250_000  # a 1,000-layer spec has ~20,000 [nnspec choice]
MAX_DEPTH = 100  # [nnspec choice]
MAX_SPEC_BYTES = 256 * 1024
"""Largest spec file or text read (a 1,000-layer spec is ~60 KB): the pure-Python YAML parser
takes seconds per MB, so the size is checked before parsing [nnspec choice]."""
MAX_EVENTS = 100_000
"""Most YAML parse events (scalars, collection starts and ends) before the spec is refused; with
the depth, checked while parsing, before any node tree is built [nnspec choice]."""


def resolve_input(path_or_text: str | Path) -> tuple[str, str | None]:
    """Return ``(text, filename)``: read a file, or take the string as YAML text.

    A string is a path when it names an existing file or ends with ``.yaml``/``.yml``.
    """
    if isinstance(path_or_text, Path) or _looks_like_path(path_or_text):
        path = Path(path_or_text)
        name = str(path_or_text)
        try:
            return read_regular(path, MAX_SPEC_BYTES).decode("utf-8"), name
        except FileNotFoundError:
            raise _file_error(name, "file not found", "check the path") from None
        except UnicodeDecodeError as e:
            raise _file_error(name, f"is not UTF-8 text ({e.reason})", "save it as UTF-8") from e
        except ValueError as e:  # a directory, FIFO or device; over MAX_SPEC_BYTES
            kind = file_kind(path)
            if kind is not None:
                raise _file_error(name, f"is {kind}, not a spec file", "name a .yaml file") from e
            raise _too_large(name, path.stat().st_size) from e
        except OSError as e:
            if file_kind(path) == "a directory":
                raise _file_error(name, "is a directory, not a spec file",
                                  "name a .yaml file") from None  # fmt: skip
            raise _file_error(name, f"cannot be read: {e.strerror}", None) from e
    return path_or_text, None


def _too_large(name: str | None, size: int) -> SpecError:
    return SpecError(
        Problem((), f"the spec has {size} bytes, more than nnspec reads ({MAX_SPEC_BYTES})",
                "a spec of at most 256 KiB", fix="a spec is a short description: move data into "
                "data files (data.source)", file=name, line=1, col=1)
    )  # fmt: skip


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
    yaml, node = _compose(text, filename)
    if node is None:
        raise SpecError(
            Problem((), "the spec is empty", "a mapping with at least a 'model' section",
                    found="an empty document", file=filename, line=1, col=1)
        )  # fmt: skip
    walker = _NodeWalker(filename, yaml.resolver)
    walker.walk(node, ())
    if walker.problems:
        raise SpecError(walker.problems)
    data = _construct(yaml, node, filename)
    if not isinstance(data, dict):
        raise SpecError(
            Problem((), "a spec must be a mapping of sections", "a mapping (model: ..., ...)",
                    found=_kind_of(data), file=filename, line=1, col=1)
        )  # fmt: skip
    return data, SourceMap(filename, walker.marks, keys=walker.keys)


def parse_value(text: str) -> Any:
    """One YAML value (a scalar or a flow collection), read as safely as a spec file.

    Example:
        >>> parse_value("[1, 2e-3, {kind: relu}]")
        [1, 0.002, {'kind': 'relu'}]
    """
    yaml, node = _compose(text, None)
    if node is None:
        return None
    walker = _NodeWalker(None, yaml.resolver)
    walker.walk(node, ())
    if walker.problems:
        raise SpecError(walker.problems)
    return _construct(yaml, node, None)


def _safe_yaml() -> Any:
    from ruamel.yaml import YAML

    # The pure-Python safe loader: it composes nodes with line/column marks and constructs only
    # plain data (YAML 1.2: `yes`/`on` stay strings, `1e-3` is a float).
    yaml = YAML(typ="safe", pure=True)
    yaml.allow_duplicate_keys = False
    return yaml


def _compose(text: str, filename: str | None) -> tuple[Any, Any]:
    """``(yaml, node)``: the same loader later resolves and constructs (it knows a %YAML 1.1)."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = _safe_yaml()
    if len(text) > MAX_SPEC_BYTES and len(text.encode("utf-8")) > MAX_SPEC_BYTES:
        raise _too_large(filename, len(text.encode("utf-8")))
    try:
        _check_events(yaml, text, filename)
        return yaml, yaml.compose(io.StringIO(text))
    except MarkedYAMLError as e:
        raise _yaml_error(e, filename) from None
    except YAMLError as e:  # unmarked parser errors (rare): still an nnspec error
        raise SpecError(Problem((), f"invalid YAML: {e}", file=filename, line=1, col=1)) from None


def _check_events(yaml: Any, text: str, filename: str | None) -> None:
    """Nesting depth and size, counted on the parser's event stream (no recursion, nothing
    built), so a 600-deep or a huge flow collection is refused before composing it."""
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

    depth = 0
    for n, event in enumerate(yaml.parse(io.StringIO(text))):
        if isinstance(event, CollectionStartEvent):
            depth += 1
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
        if depth > MAX_DEPTH or n > MAX_EVENTS:
            mark = event.start_mark
            what = f"{MAX_DEPTH} levels of nesting" if depth > MAX_DEPTH else f"{MAX_EVENTS} values"
            raise SpecError(
                Problem((), f"the spec has more than {what}", f"at most {MAX_DEPTH} levels and "
                        f"{MAX_EVENTS} values", fix="a spec is a short description: flatten it, "
                        "or move data into data files", file=filename,
                        line=mark.line + 1 if mark else 1, col=mark.column + 1 if mark else 1)
            )  # fmt: skip


def _construct(yaml: Any, node: Any, filename: str | None) -> Any:
    from ruamel.yaml.error import MarkedYAMLError

    try:
        return _plain(yaml.constructor.construct_document(node), 0)
    except MarkedYAMLError as e:  # e.g. a malformed merge key
        raise _yaml_error(e, filename) from None
    except RecursionError:
        raise SpecError(
            Problem((), "the spec refers to itself (a recursive alias)", "plain nested data",
                    file=filename, line=1, col=1)
        ) from None  # fmt: skip


def _yaml_error(e: Any, filename: str | None) -> SpecError:
    """Turn ruamel's marked error (syntax, tab, ...) into a SpecError with file:line:col."""
    mark = e.problem_mark or e.context_mark
    problem = str(e.problem or e.context or "invalid YAML")
    fix = None
    if "\\t" in repr(problem):
        fix = "indent with spaces; YAML does not allow tabs for indentation"
    elif "another document" in problem:
        fix = "a spec is one YAML document: remove the '---' and what follows it"
    return SpecError(
        Problem((), f"invalid YAML: {problem}", fix=fix, file=filename,
                line=mark.line + 1 if mark else 1, col=mark.column + 1 if mark else 1)
    )  # fmt: skip


_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _NodeWalker:
    """One pass over the composed node graph, before anything is constructed.

    Records ``path -> (line, col)``; refuses explicit tags, duplicate keys, instantiation keys and
    a top-level ``hydra:``; bounds the expanded size (aliases are expanded into plain data).
    """

    def __init__(self, filename: str | None, resolver: Any) -> None:
        self.filename = filename
        self.resolver = resolver
        self.marks: dict[FieldPath, tuple[int, int]] = {(): (1, 1)}
        self.keys: dict[FieldPath, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self.nodes = 0

    def walk(self, node: Any, path: FieldPath) -> None:
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        self.nodes += 1
        if self.nodes > MAX_NODES or len(path) > MAX_DEPTH:
            raise SpecError(
                Problem(path[:3], "the spec is too large or too deeply nested (aliases?)",
                        f"at most {MAX_NODES} nodes and {MAX_DEPTH} levels", file=self.filename,
                        line=node.start_mark.line + 1, col=node.start_mark.column + 1)
            )  # fmt: skip
        self._check_tag(node, path)
        if isinstance(node, MappingNode):
            self._mapping(node, path, set())
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                self.marks.setdefault((*path, i), _mark(item))
                self.walk(item, (*path, i))

    def _mapping(self, node: Any, path: FieldPath, seen: set[Any]) -> None:
        from ruamel.yaml.nodes import MappingNode

        for key_node, value in node.value:
            if _tag(key_node) == _MERGE_TAG or (
                key_node.value == "<<" and key_node.style is None
            ):  # `<<: *base`: the base's keys join this mapping
                for merged in value.value if not isinstance(value, MappingNode) else [value]:
                    if isinstance(merged, MappingNode):
                        self._mapping(merged, path, set(seen))
                continue
            self._check_tag(key_node, path)
            key = _key(key_node)
            sub = (*path, key)
            if key in seen:
                self._refuse(key_node, sub, f"duplicate key '{key}'", "remove one of them",
                             expected="each key once per mapping")  # fmt: skip
            seen.add(key)
            kline, kcol = _mark(key_node)
            vline, vcol = _mark(value)
            # A value on the key's line (scalar, flow collection) is marked at the value; a block
            # collection below its key is marked at the key.
            self.marks.setdefault(sub, (vline, vcol) if vline == kline else (kline, kcol))
            self.keys.setdefault(sub, (kline, kcol))
            if key in FORBIDDEN_KEYS:
                self._refuse(key_node, sub, f"'{key}' is not allowed: specs never name Python "
                             "objects to import or call", "remove it; use `kind:` to pick a "
                             "built-in or registered component")  # fmt: skip
            elif key == "hydra" and not path:
                self._refuse(key_node, sub, "a top-level 'hydra:' section is not allowed",
                             "put Hydra settings in conf/ or on the command line")  # fmt: skip
            self.walk(value, sub)

    def _check_tag(self, node: Any, path: FieldPath) -> None:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        if isinstance(node, ScalarNode):
            if "${" in str(node.value):
                self._refuse(node, path, "'${' is not allowed in a spec: a spec file is data, "
                             "never interpolated (nor read from the environment)",
                             "repeat a value with a YAML anchor (&lr 0.1, then *lr) or a block's "
                             "$params; Hydra interpolation belongs in your conf/ group files or "
                             "on the command line", found=str(node.value))  # fmt: skip
            implicit = self.resolver.resolve(ScalarNode, node.value, (node.style is None, True))
            expected = _tag(implicit) if node.style is None else "tag:yaml.org,2002:str"
        elif isinstance(node, MappingNode):
            expected = _MAP_TAG
        elif isinstance(node, SequenceNode):
            expected = _SEQ_TAG
        else:
            return
        tag = _tag(node.tag)
        if tag != expected:
            short = tag.replace("tag:yaml.org,2002:", "!!")
            self._refuse(node, path, f"YAML tag '{short}' is not allowed: specs are plain data",
                         "remove the tag", expected="plain YAML (mappings, lists, strings, "
                         "numbers)", found=short)  # fmt: skip

    def _refuse(self, node: Any, path: FieldPath, message: str, fix: str, *,
                expected: str | None = None, found: str | None = None) -> None:  # fmt: skip
        line, col = _mark(node)
        self.problems.append(
            Problem(path, message, expected, found, fix, file=self.filename, line=line, col=col)
        )


def _mark(node: Any) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _tag(tag: Any) -> str:
    return str(getattr(tag, "value", tag))  # ruamel may wrap tags in a Tag object


def _key(node: Any) -> Any:
    """The Python key a scalar key node constructs to (complex keys become their text)."""
    from ruamel.yaml.nodes import ScalarNode

    if not isinstance(node, ScalarNode):
        return str(node.value)
    tag = _tag(node.tag)
    if node.style is None and tag.endswith((":int", ":float", ":bool", ":null")):
        return _safe_yaml().constructor.construct_object(node)
    return node.value


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        from nnspec.io.problems import show_value

        return f"the string {show_value(value)}"
    return f"a {type(value).__name__}"


def _plain(value: Any, depth: int) -> Any:
    """Plain Python data: YAML timestamps become their text (specs have no date fields)."""
    if depth > MAX_DEPTH:
        raise RecursionError
    if isinstance(value, dict):
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    return value
