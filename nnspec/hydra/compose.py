"""Hydra composition behind nnspec's schemas: the one place composed config becomes typed.

``OmegaConf.to_container(resolve=True)`` then nnspec's validator (STYLE §1). A user's spec file is
read by nnspec's loader, validated, dumped canonically and written as the *primary* config of a
throw-away config folder, so every field of it can be overridden without ``+`` and groups chosen on
the command line replace whole sections.

Example:
    >>> import nnspec
    >>> spec = nnspec.compose(["experiment=breast_cancer_mlp", "optim.lr=0.003"])  # doctest: +SKIP
    >>> spec.optim.lr  # doctest: +SKIP
    0.003
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnspec.errors import Problem, SpecError, did_you_mean
from nnspec.spec import ExperimentSpec

__all__ = [
    "CONF_MODULE",
    "GROUP_NAMES",
    "ParsedArgs",
    "compose",
    "compose_container",
    "spec_primary",
    "spec_config_dir",
    "split_overrides",
    "check_override_keys",
    "load_spec",
    "validate_container",
]

CONF_MODULE = "nnspec.conf"
PRIMARY = "config"
SPEC_PRIMARY = "nnspec_spec"
# Config groups a user selects with `group=option` (no `+` needed: each has a defaults entry).
GROUP_NAMES: tuple[str, ...] = (
    "data",
    "model",
    "optim",
    "schedule",
    "train",
    "experiment",
    "sweep",
)
# Keys of the job config that come from a group whose file is package _global_.
_GROUP_OF_KEY: Mapping[str, str] = {"task": "data"}


@dataclass(frozen=True)
class ParsedArgs:
    """Command-line overrides sorted by what they touch."""

    groups: dict[str, str]  # group -> option text (may be a sweep, e.g. "adam,sgd")
    keys: list[str]  # key=value overrides of the job config, as typed
    hydra: list[str]  # hydra.* and hydra/... overrides, passed through untouched


def split_overrides(overrides: Sequence[str]) -> ParsedArgs:
    """Sort overrides into group selections, job-config keys and Hydra settings.

    Raises:
        SpecError: an override Hydra's grammar cannot parse.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as e:
        problem = Problem((), f"cannot parse override: {e}", fix="see `nnspec train --help`")
        raise SpecError(problem) from e
    groups: dict[str, str] = {}
    keys: list[str] = []
    hydra: list[str] = []
    for ov in parsed:
        key = ov.get_key_element().lstrip("+~")
        if key.startswith(("hydra.", "hydra/")) or key == "hydra":
            hydra.append(ov.input_line or "")
        elif ov.key_or_group in GROUP_NAMES:
            # the value as typed: a sweep (`adam,sgd`) has no single string form
            groups[ov.key_or_group] = (ov.input_line or "=").split("=", 1)[1]
        else:
            keys.append(ov.input_line or "")
    return ParsedArgs(groups, keys, hydra)


def spec_primary(data: Mapping[str, Any], conf_dir: Path | None = None) -> dict[str, Any]:
    """The primary config for a user's spec: its canonical data plus null group defaults.

    ``_self_`` comes first, so a group chosen on the command line replaces the spec's section; the
    caller removes that section from ``data`` first (a different optimizer kind must not inherit
    the old one's fields).
    """
    search = f"file://{conf_dir}" if conf_dir else f"pkg://{CONF_MODULE}"
    defaults: list[Any] = ["nnspec_hydra", "_self_", *({g: None} for g in GROUP_NAMES)]
    return {"defaults": defaults, "hydra": {"searchpath": [search]}, **data}


@contextlib.contextmanager
def spec_config_dir(
    data: Mapping[str, Any], groups: Mapping[str, str], conf_dir: Path | None = None
) -> Iterator[Path]:
    """A temporary config folder holding the spec as primary config ``nnspec_spec.yaml``."""
    from nnspec.hydra.configtext import render

    from_groups = set(groups) | ({"task"} if "data" in groups else set())
    kept = {k: v for k, v in data.items() if k not in from_groups}
    with tempfile.TemporaryDirectory(prefix="nnspec-conf-") as tmp:
        path = Path(tmp) / f"{SPEC_PRIMARY}.yaml"
        path.write_text(render(spec_primary(kept, conf_dir)))
        yield Path(tmp)


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read and validate a spec file with nnspec's loader (file:line:col in errors)."""
    from nnspec.io import load

    return load(path)


def _spec_data(spec: ExperimentSpec | str | Path) -> dict[str, Any]:
    from nnspec.hydra.configtext import canonical

    return canonical(spec if isinstance(spec, ExperimentSpec) else load_spec(spec))


def compose_container(
    overrides: Sequence[str] = (),
    *,
    spec: ExperimentSpec | str | Path | None = None,
    config_dir: Path | None = None,
    with_hydra: bool = False,
    search_dirs: Sequence[Path] = (),
    config_name: str | None = None,
) -> dict[str, Any]:
    """Compose with Hydra's compose API and return the resolved job config as plain data.

    Args:
        overrides: Hydra overrides (``group=option``, ``key=value``); no sweeps.
        spec: a user's spec (object or YAML path) used as primary config instead of ``config``.
        config_dir: a conf folder to use instead of the packaged ``nnspec.conf``.
        with_hydra: also return part of the ``hydra`` node: ``runtime.choices`` (the group files)
            and ``sweeper`` (unresolved).
        search_dirs: the user's config folders (``--config-dir``): their group options join
            nnspec's.
        config_name: the user's primary config (``--config-name``, in the first of
            ``search_dirs``) instead of nnspec's ``config`` (without ``spec``).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir, initialize_config_module
    from omegaconf import OmegaConf

    # `hydra/sweeper: nnspec_optuna` and `hydra/launcher: nnspec_pool` must be in Hydra's
    # ConfigStore for files and overrides that select them.
    import nnspec.hydra.plugins  # noqa: F401

    args = split_overrides(overrides)
    with contextlib.ExitStack() as stack:
        if spec is not None:
            tmp = stack.enter_context(spec_config_dir(_spec_data(spec), args.groups, config_dir))
            stack.enter_context(initialize_config_dir(str(tmp), version_base="1.3"))
            name = SPEC_PRIMARY
        elif config_dir is not None or (config_name and search_dirs):
            # the user's primary config is found in the main folder only (search paths come later)
            main = config_dir if config_dir is not None else Path(search_dirs[0]).resolve()
            stack.enter_context(initialize_config_dir(str(main), version_base="1.3"))
            name = config_name or PRIMARY
        else:
            stack.enter_context(initialize_config_module(CONF_MODULE, version_base="1.3"))
            name = config_name or PRIMARY
        extra = [_searchpath(search_dirs, config_dir)] if search_dirs else []
        cfg = _hydra_compose(hydra_compose, name, [*overrides, *extra], with_hydra)
        return _split_hydra(cfg) if with_hydra else OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def _searchpath(dirs: Sequence[Path], config_dir: Path | None) -> str:
    """``hydra.searchpath`` naming the user's folders and nnspec's config (the override replaces
    the primary config's list, so nnspec's own is named again)."""
    own = f"file://{config_dir}" if config_dir else f"pkg://{CONF_MODULE}"
    paths = [f"file://{Path(d).resolve()}" for d in dirs] + [own]
    return "hydra.searchpath=[" + ",".join(f"'{p}'" for p in paths) + "]"


def _split_hydra(cfg: Any) -> dict[str, Any]:
    """The resolved job config plus the parts of the ``hydra`` node nnspec reads.

    Only ``runtime.choices`` and ``sweeper`` are kept: the rest holds run-time values (output dirs)
    that do not resolve outside a run.
    """
    from omegaconf import OmegaConf, open_dict

    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    sweeper = OmegaConf.to_container(cfg.hydra.sweeper, resolve=False)  # grammar text
    with open_dict(cfg):
        del cfg["hydra"]
    job = OmegaConf.to_container(cfg, resolve=True)
    return {**job, "hydra": {"runtime": {"choices": choices}, "sweeper": sweeper}}  # type: ignore[dict-item]


def _hydra_compose(fn: Any, name: str, overrides: list[str], with_hydra: bool) -> Any:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return fn(config_name=name, overrides=overrides, return_hydra_config=with_hydra)
    except (HydraException, OmegaConfBaseException) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpecError(Problem((), f"cannot compose the config: {msg}")) from e


def _walk(node: Any, parts: Sequence[str]) -> tuple[int, Any]:
    """How many leading parts of a dotted key exist in ``node``, and the last node reached."""
    for i, part in enumerate(parts):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return i, node
    return len(parts), node


def check_override_keys(keys: Sequence[str], container: Mapping[str, Any]) -> None:
    """Refuse ``key=value`` overrides naming a field that does not exist, with a did-you-mean.

    Runs before Hydra sees the overrides, so ``optim.lrr=1`` gets nnspec's message instead of
    Hydra's "Could not override".

    Raises:
        SpecError: one problem per unknown key, each naming the override text.
    """
    problems = []
    for text in keys:
        if text.startswith(("+", "~")):
            continue  # explicit adds/deletes: validation after composition judges them
        key = text.split("=", 1)[0]
        parts = key.split(".")
        depth, node = _walk(container, parts)
        if depth == len(parts):
            continue
        bad = parts[depth]
        choices = list(node) if isinstance(node, Mapping) else []
        hint = did_you_mean(bad, choices)
        msg = f"{text}: unknown field '{bad}'" + (f"; {hint}" if hint else "")
        fix = f"fields here: {', '.join(map(str, choices))}" if choices else None
        problems.append(Problem(tuple(parts[: depth + 1]), msg, fix=fix))
    if problems:
        raise SpecError(problems)


def _refuse_targets(node: Any, path: tuple[str | int, ...] = ()) -> list[Problem]:
    """Configs never execute code: ``_target_``-style keys are refused wherever they appear."""
    found: list[Problem] = []
    items = (
        node.items()
        if isinstance(node, Mapping)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for k, v in items:
        if k in ("_target_", "_partial_", "_args_", "_component_"):
            found.append(
                Problem((*path, k), f"'{k}' is not allowed: nnspec configs never execute code")
            )
        found += _refuse_targets(v, (*path, k))
    return found


def _key_path(text: str) -> tuple[str, ...]:
    return tuple(text.lstrip("+~").split("=", 1)[0].split("."))


def _blame(p: Problem, keys: Sequence[str], choices: Mapping[str, str]) -> Problem:
    """Point a problem at the override (or group file) its value came from."""
    path = tuple(str(x) for x in p.path)
    for text in reversed(keys):  # the last override of a key wins
        kp = _key_path(text)
        if path[: len(kp)] == kp or kp[: len(path)] == path:
            return p.located(f"override '{text}'", None, None)
    if path:
        group = _GROUP_OF_KEY.get(path[0], path[0])
        if choices.get(group):
            return p.located(f"{group}/{choices[group]}.yaml", None, None)
    return p


def validate_container(
    data: Mapping[str, Any],
    keys: Sequence[str] = (),
    choices: Mapping[str, str] | None = None,
) -> ExperimentSpec:
    """Validate composed job config data with nnspec's schema.

    Args:
        data: the resolved job config (no ``hydra`` node).
        keys: the ``key=value`` overrides applied, so problems can name them.
        choices: ``group -> option`` chosen by composition, so problems can name the group file.

    Raises:
        SpecError: every problem at once, each naming the override or group file it came from.
    """
    problems = _refuse_targets(data)
    if problems:
        raise SpecError(problems)
    try:
        return _validate(dict(data))
    except SpecError as e:
        blamed = [_blame(p, keys, choices or {}) for p in e.problems]
        raise SpecError(blamed, title=e.title) from e


def _validate(data: dict[str, Any]) -> ExperimentSpec:
    from nnspec.io import validate

    return validate(data)


def compose(
    overrides: Sequence[str] | None = None,
    spec: ExperimentSpec | str | Path | None = None,
    *,
    config_dir: Path | None = None,
    search_dirs: Sequence[Path] = (),
    config_name: str | None = None,
) -> ExperimentSpec:
    """Compose nnspec's Hydra config (or ``spec``) with overrides and validate the result.

    Args:
        overrides: ``group=option`` and ``key=value`` strings, as on the command line.
        spec: a spec (object or YAML path) to use as the primary config instead of the default
            experiment.
        config_dir: a conf folder to use instead of the packaged ``nnspec.conf`` (tests).
        search_dirs: the user's config folders: their group options join nnspec's.
        config_name: the user's primary config in one of ``search_dirs`` (without ``spec``).

    Returns:
        The validated experiment.

    Raises:
        SpecError: an unknown key, a bad value or an unparsable override.

    Example:
        >>> import nnspec
        >>> nnspec.compose(["optim=sgd", "optim.lr=0.05"]).optim.kind  # doctest: +SKIP
        'sgd'
    """
    overrides = list(overrides or ())
    args = split_overrides(overrides)
    where = {"config_dir": config_dir, "search_dirs": search_dirs, "config_name": config_name}
    if args.keys:  # unknown keys get nnspec's message, not Hydra's "Could not override"
        plain = [f"{g}={o}" for g, o in args.groups.items()]
        check_override_keys(args.keys, compose_container(plain, spec=spec, **where))
    full = compose_container(overrides, spec=spec, with_hydra=True, **where)
    hydra_node = full.pop("hydra", {})
    choices = hydra_node.get("runtime", {}).get("choices", {})
    return validate_container(full, args.keys, choices)
