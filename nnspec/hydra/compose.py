"""Hydra composition behind nnspec's schemas: the one place composed config becomes typed.

``OmegaConf.to_container(resolve=True)`` then nnspec's validator (STYLE §1). A user's spec file is
read by nnspec's loader, validated, dumped canonically and stored as the *primary* config in Hydra's
ConfigStore (:mod:`nnspec.hydra.sources`), so every field of it can be overridden without ``+`` and
groups chosen on the command line replace whole sections. Overrides are read by Hydra's override
parser only, for every command.

Example:
    >>> import nnspec
    >>> spec = nnspec.compose(["experiment=breast_cancer_mlp", "optim.lr=0.003"])  # doctest: +SKIP
    >>> spec.optim.lr  # doctest: +SKIP
    0.003
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnspec.errors import Problem, SpecError
from nnspec.hydra.keys import check_override_keys, refuse_targets
from nnspec.hydra.naming import run_name_override
from nnspec.hydra.sources import CONF_MODULE, GROUP_NAMES, Sources, session
from nnspec.io.overrides import parse_overrides, rewrite_names
from nnspec.spec import ExperimentSpec

__all__ = [
    "CONF_MODULE",
    "GROUP_NAMES",
    "ParsedArgs",
    "Sources",
    "compose",
    "composed",
    "compose_container",
    "override_origins",
    "prepare",
    "split_overrides",
    "check_override_keys",
    "load_spec",
    "spec_input",
    "validate_container",
]

# Keys of the job config that come from a group whose file is package _global_.
_GROUP_OF_KEY: Mapping[str, str] = {"task": "data"}


@dataclass(frozen=True)
class ParsedArgs:
    """Command-line overrides sorted by what they touch."""

    groups: dict[str, str]  # group -> option text (may be a sweep, e.g. "adam,sgd")
    keys: list[str]  # key=value overrides of the job config, as typed
    hydra: list[str]  # hydra.* and hydra/... overrides, passed through untouched
    searchpath: list[str] = field(default_factory=list)  # a `hydra.searchpath=[...]`'s entries


def split_overrides(overrides: Sequence[str]) -> ParsedArgs:
    """Sort overrides into group selections, job-config keys and Hydra settings.

    Raises:
        SpecError: an override Hydra's grammar cannot parse.
    """
    groups: dict[str, str] = {}
    keys: list[str] = []
    hydra: list[str] = []
    searchpath: list[str] = []
    for ov in parse_overrides(overrides):
        key = ov.get_key_element().lstrip("+~")
        if key == "hydra.searchpath" and isinstance(ov.value(), list):
            searchpath = [str(v) for v in ov.value()]  # the user's folders (Sources)
        elif key.startswith(("hydra.", "hydra/")) or key == "hydra":
            hydra.append(ov.input_line or "")
        elif ov.key_or_group in GROUP_NAMES and not ov.is_delete():
            # the value as typed: a sweep (`adam,sgd`) has no single string form
            groups[ov.key_or_group] = (ov.input_line or "=").split("=", 1)[1]
        else:
            keys.append(ov.input_line or "")
    return ParsedArgs(groups, keys, hydra, searchpath)


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read and validate a spec file with nnspec's loader (file:line:col in errors)."""
    from nnspec.io import load

    return load(path)


def _spec_data(spec: ExperimentSpec | str | Path | Mapping[str, Any]) -> dict[str, Any]:
    from nnspec.hydra.configtext import canonical

    if isinstance(spec, Mapping):
        return dict(spec)  # a file's data that overrides are to fix (see spec_input)
    return canonical(spec if isinstance(spec, ExperimentSpec) else load_spec(spec))


def spec_input(path: str | Path, overrides: Sequence[str]) -> tuple[Any, Any]:
    """A spec file as composition's primary config: ``(spec or data, source map)``.

    A valid file is its canonical spec; an invalid one, when overrides are given, is its plain
    data, so an override can fix it (``bad.yaml model.layers.1.out_features=5`` validates and
    trains alike); without overrides its problems are raised with ``file:line:col``.
    """
    from nnspec.io import read_yaml, validate

    data, source = read_yaml(Path(path))
    try:
        return validate(data, source), source
    except SpecError:
        if not split_overrides(overrides).keys:
            raise
        return data, source


def compose_container(
    overrides: Sequence[str] = (),
    *,
    spec: ExperimentSpec | str | Path | Mapping[str, Any] | None = None,
    sources: Sources = Sources(),
    with_hydra: bool = False,
    config_name: str | None = None,
) -> dict[str, Any]:
    """Compose with Hydra's compose API and return the resolved job config as plain data.

    Args:
        overrides: Hydra overrides (``group=option``, ``key=value``); no sweeps. A
            ``hydra.searchpath`` among them is read as the user's folders (joined to
            ``sources``).
        spec: a user's spec (object or YAML path) used as primary config instead of ``config``.
        sources: the user's config folders (``--config-dir``): their group options join nnspec's
            and win over an option of the same name.
        with_hydra: also return part of the ``hydra`` node: ``runtime.choices`` (the group files)
            and ``sweeper`` (unresolved).
        config_name: the user's primary config (``--config-name``) instead of nnspec's
            ``config`` (without ``spec``).
    """
    from hydra import compose as hydra_compose

    args = split_overrides(overrides)
    sources = Sources(
        tuple(dict.fromkeys([*sources.user, *Sources.of(None, args.searchpath).user]))
    )
    plain = [o for o in overrides if not o.lstrip("+").startswith("hydra.searchpath=")]
    data = _spec_data(spec) if spec is not None else None
    with session(sources, data, args.groups, config_name=config_name) as name:
        extra = [sources.searchpath_override()] if sources.user else []
        cfg = _hydra_compose(hydra_compose, name,
                             [*plain, *(e for e in extra if e)], with_hydra)  # fmt: skip
    return _split_hydra(cfg) if with_hydra else _resolved(cfg)


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
    job = _resolved(cfg)
    return {**job, "hydra": {"runtime": {"choices": choices}, "sweeper": sweeper}}


def _resolved(cfg: Any) -> dict[str, Any]:
    """``OmegaConf.to_container(resolve=True)``; an interpolation that fails is a SpecError."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpecError(Problem((), f"cannot resolve the config: {msg}",
                                fix="check the ${...} interpolations of your overrides and "
                                "config files")) from e  # fmt: skip


def _hydra_compose(fn: Any, name: str, overrides: list[str], with_hydra: bool) -> Any:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return fn(config_name=name, overrides=overrides, return_hydra_config=with_hydra)
    except (HydraException, OmegaConfBaseException) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        raise SpecError(Problem((), f"cannot compose the config: {msg}")) from e


def _key_path(text: str) -> tuple[str, ...]:
    return tuple(text.lstrip("+~").split("=", 1)[0].split("."))


def _blame(
    p: Problem, keys: Sequence[str], choices: Mapping[str, str], sources: Sources
) -> Problem:
    """Point a problem at the override, else the group file (and line) its value came from."""
    from nnspec.hydra.locate import locate

    path = tuple(str(x) for x in p.path)
    for text in reversed(keys):  # the last override of a key wins
        kp = _key_path(text)
        if path[: len(kp)] == kp or kp[: len(path)] == path:
            return p.located(f"override '{text}'", None, None)
    if not path:
        return p
    group = _GROUP_OF_KEY.get(path[0], path[0])
    for g in ("experiment", group):  # an experiment sets values of every section
        option = choices.get(g)
        found = sources.option_file(g, option) if option else None
        if found is not None:
            where = locate(found[1], g, path)
            if where is not None or g == group:
                line, col = where or (None, None)
                return p.located(found[0], line, col)
    return p


def validate_container(
    data: Mapping[str, Any],
    keys: Sequence[str] = (),
    choices: Mapping[str, str] | None = None,
    sources: Sources = Sources(),
) -> ExperimentSpec:
    """Validate composed job config data with nnspec's schema.

    Args:
        data: the resolved job config (no ``hydra`` node).
        keys: the ``key=value`` overrides applied, so problems can name them.
        choices: ``group -> option`` chosen by composition, so problems can name the group file.
        sources: where the group files are, so a problem names the file and line it came from.

    Raises:
        SpecError: every problem at once, each naming the override or group file it came from.
    """
    problems = refuse_targets(data)
    if problems:
        raise SpecError(problems)
    try:
        return _validate(dict(data))
    except SpecError as e:
        blamed = [_blame(p, keys, choices or {}, sources) for p in e.problems]
        raise SpecError(blamed, title=e.title) from e


def _validate(data: dict[str, Any]) -> ExperimentSpec:
    from nnspec.io import validate

    return validate(data)


def compose(
    overrides: Sequence[str] | None = None,
    spec: ExperimentSpec | str | Path | None = None,
    *,
    sources: Sources = Sources(),
    config_name: str | None = None,
) -> ExperimentSpec:
    """Compose nnspec's Hydra config (or ``spec``) with overrides and validate the result.

    Every command composes through here (``nnspec train`` through Hydra's run, with the same
    overrides): a line that validates is a line that trains.

    Args:
        overrides: ``group=option`` and ``key=value`` strings in Hydra's grammar, as on the
            command line; layers may be addressed by name (``model.layers.hidden.p=0.2``).
        spec: a spec (object or YAML path) to use as the primary config instead of the default
            experiment.
        sources: the user's config folders: their group options join nnspec's.
        config_name: the user's primary config in one of ``sources`` (without ``spec``).

    Returns:
        The validated experiment.

    Raises:
        SpecError: an unknown key, group option or layer name, a bad value or an unparsable
            override.

    Example:
        >>> import nnspec
        >>> nnspec.compose(["optim=sgd", "optim.lr=0.05"]).optim.kind  # doctest: +SKIP
        'sgd'
    """
    return composed(list(overrides or ()), spec, sources=sources, config_name=config_name)[0]


def composed(
    overrides: list[str], spec: ExperimentSpec | str | Path | Mapping[str, Any] | None = None, *,
    sources: Sources = Sources(), config_name: str | None = None,
    spec_path: str | Path | None = None,
) -> tuple[ExperimentSpec, list[str]]:  # fmt: skip
    """:func:`compose`, also returning the overrides as Hydra got them (layer names rewritten
    to indices), so problems found later (shapes) can name the override they came from."""
    path = spec_path or (spec if isinstance(spec, (str, Path)) else None)
    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    overrides = prepare(overrides, spec, sources=sources, config_name=config_name, spec_path=path)
    full = compose_container(overrides, spec=spec, with_hydra=True, sources=sources,
                             config_name=config_name)  # fmt: skip
    hydra_node = full.pop("hydra", {})
    choices = hydra_node.get("runtime", {}).get("choices", {})
    return validate_container(full, split_overrides(overrides).keys, choices, sources), overrides


def override_origins(overrides: Sequence[str]) -> dict[tuple[str | int, ...], str]:
    """``field path -> override text`` of the ``key=value`` overrides (a SourceMap's origins)."""
    from nnspec.io.overrides import override_origins as origins

    return origins(split_overrides(overrides).keys)


def _check_keys(
    keys: list[str], base: Mapping[str, Any], groups: Mapping[str, str],
    compose_fn: Callable[[list[str]], Mapping[str, Any]],
) -> None:  # fmt: skip
    """Every key names a field of ``base``; in a sweep over group options (``optim=adam,sgd``),
    a key that only some options have (``optim.momentum``: sgd's) is a field of one of them.

    Raises:
        SpecError: the keys no option knows, as ``base`` (the first options) explains them.
    """
    from nnspec.hydra.groups import first_choice, group_values

    unknown = [k for k in keys if not _known(k, base)]
    first = first_choice(groups)
    for i, (group, value) in enumerate(groups.items()):
        for option in group_values(value)[1:] if unknown else []:
            other = compose_fn([*first[:i], f"{group}={option}", *first[i + 1 :]])
            unknown = [k for k in unknown if not _known(k, other)]
    if unknown:
        check_override_keys(unknown, base)


def _known(key: str, container: Mapping[str, Any]) -> bool:
    try:
        check_override_keys([key], container)
    except SpecError:
        return False
    return True


def prepare(
    overrides: list[str], spec: ExperimentSpec | str | Path | Mapping[str, Any] | None, *,
    sources: Sources = Sources(), config_name: str | None = None, sweep: bool = False,
    spec_path: str | Path | None = None,
) -> list[str]:  # fmt: skip
    """Check group options and keys, and rewrite layer names to indices, before Hydra composes.

    The config the keys are checked against is composed from the group choices alone (a
    sweep's first option), so ``optim.lrr=1`` gets nnspec's did-you-mean instead of Hydra's
    "Could not override", and ``model.layers.hidden.out_features=64`` finds the layer named
    ``hidden`` of the model those choices give. The run's ``name`` is added where the choices
    name it (:mod:`nnspec.hydra.naming`), for every command alike.

    Raises:
        SpecError: every unknown option, key or layer name at once.
    """
    from nnspec.hydra.groups import check_group_options, first_choice

    args = split_overrides(overrides)
    sources = Sources(
        tuple(dict.fromkeys([*sources.user, *Sources.of(None, args.searchpath).user]))
    )
    check_group_options(args.groups, sweep=sweep, sources=sources)
    if args.keys:
        base = compose_container(first_choice(args.groups), spec=spec, sources=sources,
                                 config_name=config_name)  # fmt: skip
        renamed = rewrite_names(args.keys, base)
        keys = [renamed.get(k, k) for k in args.keys]

        def alternative(choices: list[str]) -> Mapping[str, Any]:
            return compose_container(choices, spec=spec, sources=sources, config_name=config_name)

        _check_keys(keys, base, args.groups if sweep else {}, alternative)
        overrides = [renamed.get(o, o) for o in overrides]

    def picked(choices: list[str]) -> Mapping[str, str]:
        full = compose_container(choices, with_hydra=True, sources=sources, config_name=config_name)
        return full["hydra"]["runtime"]["choices"]  # type: ignore[no-any-return]

    named = run_name_override(Path(spec_path) if spec_path else None, spec, args, picked)
    return [named, *overrides] if named is not None else overrides
