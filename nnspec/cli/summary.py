"""nnspec summary [SPEC.yaml] [key.path=value ...] [--data]

A table of the model's layers as shape inference sees them (no weight is allocated): path/name,
kind, output shape, parameters, activation, init rule and why it was chosen, norm; then the totals
(trainable and frozen parameters, size in MB at 4 bytes per fp32 parameter). Without SPEC the
built-in default experiment is summarised. ``--data`` opens the data (the first rows of a
table) and takes the ``auto`` sizes (input width, number of classes) from it.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nnspec.cli.common import EXIT_OK, check_shapes, console, load_spec, one_spec, spec_for_data

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["LayerRow", "Totals", "totals", "render_summary", "run"]

BYTES_PER_PARAM = 4  # fp32; the size column is what the weights take in memory or on disk


class LayerRow(Protocol):
    """What the summary reads from :class:`nnspec.compile.LayerInfo` (the compiler's contract)."""

    path: tuple[str | int, ...]
    name: str
    kind: str
    out_shape: tuple[int, ...]
    params: int
    trainable: bool
    activation: str | None
    init: str | None
    init_reason: str | None
    norm: str | None
    depth: int


@dataclass(frozen=True)
class Totals:
    """Parameter totals of a model."""

    trainable: int
    frozen: int

    @property
    def total(self) -> int:
        return self.trainable + self.frozen

    @property
    def size_mb(self) -> float:
        return self.total * BYTES_PER_PARAM / 1e6


def totals(infos: Sequence[LayerRow]) -> Totals:
    """Sum the top-level rows (a block's row already counts its children)."""
    trainable = sum(i.params for i in infos if i.trainable)
    frozen = sum(i.params for i in infos if not i.trainable)
    return Totals(trainable, frozen)


def _rows(infos: Sequence[Any], level: int = 0) -> Iterator[tuple[Any, int]]:
    for info in infos:
        yield info, max(level, getattr(info, "depth", 0))
        yield from _rows(getattr(info, "children", ()) or (), level + 1)


def _shape(shape: Sequence[int] | Mapping[str, Sequence[int]]) -> str:
    if isinstance(shape, Mapping):  # named model inputs (model.inputs)
        return ", ".join(f"{name} {tuple(s)}" for name, s in shape.items())
    return str(tuple(shape))


def render_summary(
    title: str, input_shape: Sequence[int] | Mapping[str, Sequence[int]], infos: Sequence[LayerRow]
) -> Table:
    """A rich table with one row per layer (children of blocks indented) and a totals footer."""
    from rich.table import Table

    t = totals(infos)
    table = Table(
        title=f"{title}  input {_shape(input_shape)}", show_footer=True, title_justify="left"
    )
    table.add_column("layer", footer="total")
    table.add_column("kind")
    table.add_column("output shape")
    table.add_column("params", justify="right", footer=f"{t.total:,}")
    table.add_column("activation")
    table.add_column("init (why)")
    table.add_column("norm")
    for info, depth in _rows(infos):
        label = ".".join(str(p) for p in info.path[1:]) or info.name
        if info.name != str(info.path[-1]):
            label += f" ({info.name})"
        init = f"{info.init} ({info.init_reason})" if info.init and info.init_reason else info.init
        params = f"{info.params:,}" + ("" if info.trainable else " frozen")
        row = (
            "  " * depth + label, info.kind, _shape(info.out_shape), params,
            info.activation or "", init or "", info.norm or "",
        )  # fmt: skip
        table.add_row(*row)
    table.caption = (
        f"trainable {t.trainable:,}  frozen {t.frozen:,}  size {t.size_mb:.2f} MB (fp32)"
    )
    table.caption_justify = "left"
    return table


def run(args: Namespace) -> int:
    """``nnspec summary``: print the layer table of one spec."""
    path, overrides = one_spec(args, "summary")
    spec, source = load_spec(path, overrides, config_dir=args.config_dir)
    if args.data:
        spec = spec_for_data(spec, source, Path(path).resolve().parent if path else None)
    infos = check_shapes(spec, source)
    shape = spec.model.input_shape if spec.model.inputs is None else spec.model.inputs
    console().print(render_summary(spec.name, shape, infos))
    return EXIT_OK
