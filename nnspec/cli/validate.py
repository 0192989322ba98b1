"""nnspec validate [SPEC.yaml ...] [key.path=value ...] [--json] [--no-shapes] [--data]

Check each spec against the schema and infer every layer's shape (no weight is allocated, so a
width of 10**9 is checked in microseconds). Prints every problem with file:line:col, field path,
expected, found and a fix. Without SPEC the built-in default experiment is checked.

Options:
  --json        print one JSON record per spec (ok, problems with path/line/col/...)
  --no-shapes   skip shape inference (schema only)
  --data        also open the data (the first rows of a table) as training would: file, column,
                target and shape problems; `auto` sizes take their values from it. Without it,
                a spec with `auto` sizes is checked without shape inference.

Exit status: 0 when every spec is valid, 2 otherwise.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from nnspec.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    check_shapes,
    console,
    dumps_json,
    load_spec,
    print_error,
    problems_json,
    spec_for_data,
    spec_label,
)
from nnspec.errors import NNSpecError
from nnspec.spec.model import auto_sizes

__all__ = ["run", "validate_one"]


def validate_one(
    path: str | None,
    overrides: tuple[str, ...],
    *,
    shapes: bool = True,
    data: bool = False,
    config_dir: str | None = None,
) -> dict[str, Any]:
    """Validate one spec; return a record ``{spec, ok, name, layers, params, error}``."""
    label = spec_label(path, overrides)
    try:
        spec, source = load_spec(path, overrides, config_dir=config_dir)
        if data:
            spec = spec_for_data(spec, source, Path(path).resolve().parent if path else None)
        auto = bool(auto_sizes(spec.model))  # sizes the data decides: no shapes without it
        infos = check_shapes(spec, source) if shapes and not auto else []
    except NNSpecError as e:
        return {"spec": label, "ok": False, "error": e}
    params = sum(i.params for i in infos)
    return {
        "spec": label,
        "ok": True,
        "name": spec.name,
        "layers": len(spec.model.layers),
        "params": None if auto else params,
    }


def run(args: Namespace) -> int:
    """``nnspec validate``: exit 0 if every spec is valid, else 2 with all problems printed."""
    from nnspec.cli.parser import split_positionals

    specs, overrides = split_positionals(args.args)
    paths: list[str | None] = list(specs) or [None]
    records = [
        validate_one(
            p,
            tuple(overrides),
            shapes=not args.no_shapes,
            data=args.data,
            config_dir=args.config_dir,
        )
        for p in paths
    ]
    if args.json:
        print(dumps_json([_json_record(r) for r in records]))
    else:
        out = console()
        for r in records:
            if r["ok"]:
                if args.no_shapes:
                    shapes = ""
                elif r["params"] is None:
                    shapes = ", sizes `auto`: --data takes them from the data"
                else:
                    shapes = f", {r['params']:,} parameters"
                layers = f"{r['layers']} layer" + ("s" if r["layers"] != 1 else "")
                out.print(f"[green]ok[/]: {r['spec']} ({r['name']}: {layers}{shapes})")
            else:
                print_error(r["error"], label=r["spec"])
    return EXIT_OK if all(r["ok"] for r in records) else EXIT_INVALID


def _json_record(record: dict[str, Any]) -> dict[str, Any]:
    if record["ok"]:
        return record
    err = record["error"]
    return {
        "spec": record["spec"],
        "ok": False,
        "error": type(err).__name__,
        "problems": problems_json(err.problems),
    }
