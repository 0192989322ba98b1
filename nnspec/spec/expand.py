"""The expansion of ``model.layers`` into a :class:`~nnspec.spec.graph.Graph` (pure, no torch).

One walk over the layer list: block uses are instantiated (``$param`` substitution, validation of
each instantiated layer against its template's path), residual blocks become body -> shortcut ->
add -> post nodes, names are resolved once every scope is complete (so ``inputs`` may name a later
layer, and a cycle can be reported by name), then the nodes are sorted topologically and unused
branches and heads are found. Problems are collected and raised once.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from nnspec.errors import did_you_mean, format_path
from nnspec.spec.activations import Identity
from nnspec.spec.blocks import BlockDef, BlockUse, ResidualSpec, check_args, substitute
from nnspec.spec.graph import (
    Add,
    Concat,
    Graph,
    Issue,
    Loc,
    Multiply,
    Node,
    Shortcut,
    raise_problems,
)
from nnspec.spec.graph_order import check_used, mark_heads, toposort
from nnspec.spec.layers import (
    ActivationLayer,
    BatchNorm,
    GroupNorm,
    InstanceNorm,
    LayerBase,
    LayerNorm,
    LayerSpec,
    WeightLayer,
)
from nnspec.spec.reserved import is_reserved, name_clash

if TYPE_CHECKING:
    from nnspec.spec.model import ModelSpec

__all__ = ["expand_model"]


@functools.cache
def _layer_adapter() -> TypeAdapter[Any]:
    # built on first expansion, not at import (see blocks._param_adapter)
    return TypeAdapter(LayerSpec)


_NORM_LAYERS = (BatchNorm, LayerNorm, GroupNorm, InstanceNorm)


@dataclass
class _Ref:
    """An unresolved name, looked up in ``scope`` once the whole graph is known."""

    scope: dict[str, Any]
    name: str
    loc: Loc


@dataclass
class _Draft:
    node: Node
    inputs: list[Any]  # node ids (str) or _Ref
    refs: list[Any] = field(default_factory=list)


class _Expander:
    """Walks the layer list once; collects problems instead of stopping at the first."""

    def __init__(self, model: ModelSpec) -> None:
        self.model = model
        self.drafts: list[_Draft] = []
        self.issues: list[Issue] = []
        self.stack: list[str] = []  # block names being expanded (recursion guard)

    # -- scopes -----------------------------------------------------------------------------
    def scope(
        self,
        items: Sequence[Any],
        prefix: tuple[str, ...],
        names: dict[str, Any],
        first_input: Any,
        ctx: _Ctx,
    ) -> Any:
        """Expand a layer list; returns the id (or _Ref) of its last output."""
        prev = first_input
        for j, item in enumerate(items):
            loc = (*ctx.loc, j)
            key = item.name if item.name else str(j)
            if item.inputs:
                srcs: list[Any] = [
                    _Ref(names, n, (*loc, "inputs", k)) for k, n in enumerate(item.inputs)
                ]
            elif prev is None:
                msg = (
                    "this layer has no input: the model has several inputs; "
                    "name one, e.g. inputs: [image]"
                )
                self.issues.append(((*loc, "inputs"), msg, None))
                srcs = []
            else:
                srcs = [prev]
            self._arity(item, srcs, loc)
            if isinstance(item, BlockUse):
                out = self.block_use(item, (*prefix, key), srcs[:1], loc, ctx)
            else:
                out = self.add((*prefix, key), item, srcs, loc, ctx)
            if item.name:
                if item.name in names:
                    self.issues.append(((*loc, "name"), f"duplicate name '{item.name}'", item.name))
                if is_reserved(item.name):
                    self.issues.append(((*loc, "name"), name_clash(item.name), item.name))
                names[item.name] = out
            prev = out
        return prev

    def _arity(self, item: LayerBase, srcs: list[Any], loc: Loc) -> None:
        if isinstance(item, (Add, Multiply, Concat)):
            if len(srcs) < 2:
                msg = f"{item.kind} merges two or more inputs; name them: inputs: [a, b]"
                self.issues.append(((*loc, "inputs"), msg, list(item.inputs or ())))
        elif len(srcs) > 1:
            msg = (
                f"layer kind '{item.kind}' takes one input, found {len(srcs)}; "
                "merge them first with add, concat or multiply"
            )
            self.issues.append(((*loc, "inputs"), msg, list(item.inputs or ())))

    def add(
        self,
        key: tuple[str, ...],
        layer: LayerBase,
        srcs: list[Any],
        loc: Loc,
        ctx: _Ctx,
        refs: list[Any] | None = None,
    ) -> str:
        node = Node(
            id=".".join(key),
            layer=ctx.adjust(layer),
            inputs=(),
            path=loc,
            context=ctx.text,
            depth=ctx.depth,
            block=ctx.block,
        )
        self.drafts.append(_Draft(node, list(srcs), list(refs or [])))
        return node.id

    # -- blocks -----------------------------------------------------------------------------
    def block_use(
        self, use: BlockUse, key: tuple[str, ...], srcs: list[Any], loc: Loc, ctx: _Ctx
    ) -> Any:
        block = self.model.blocks.get(use.block)
        if block is None:
            hint = did_you_mean(use.block, self.model.blocks)
            msg = f"unknown block '{use.block}'" + (f"; {hint}" if hint else "")
            choices = ", ".join(self.model.blocks) or "none defined in model.blocks"
            self.issues.append(((*loc, "block"), f"{msg} (blocks: {choices})", use.block))
            return srcs[0] if srcs else None
        if use.block in self.stack:
            chain = " -> ".join([*self.stack, use.block])
            self.issues.append(((*loc, "block"), f"block uses itself: {chain}", use.block))
            return srcs[0] if srcs else None
        args, problems = check_args(block, use.block, use.args, (*loc, "args"))
        first_args, more = check_args(block, use.block, {**use.args, **use.first}, (*loc, "first"))
        # Only the keys written under `first` are new problems; the rest repeat `args`'.
        more = [p for p in more if p[0][:-1] == (*loc, "first") and p[0][-1] in use.first]
        self.issues += problems + more
        if problems or more:
            return srcs[0] if srcs else None
        self.stack.append(use.block)
        out = srcs[0] if srcs else None
        for r in range(use.repeat):
            inner = ctx.enter(use, loc, r, key)
            out = self.repetition(block, first_args if r == 0 else args, (*key, str(r)), out, inner)
        self.stack.pop()
        return out

    def repetition(
        self, block: BlockDef, args: dict[str, Any], key: tuple[str, ...], block_in: Any, ctx: _Ctx
    ) -> Any:
        layers = self.instantiate(block.layers, args, ctx.block_loc("layers"), ctx)
        if block.residual is None:
            return self.scope(layers, key, {"input": block_in}, block_in, ctx.at("layers"))
        res = block.residual
        first = len(self.drafts)
        body_out = self.scope(
            layers, (*key, "body"), {"input": block_in}, block_in, ctx.at("layers")
        )
        if res.zero_init_last_norm:
            self._zero_last_norm(first, ctx)
        short_out = self.shortcut(res, args, key, block_in, body_out, ctx)
        out = self.add((*key, "add"), Add(), [body_out, short_out], ctx.block_loc("residual"), ctx)
        post = res.activation or (self.model.defaults.activation if res.style == "post" else None)
        if post is None or isinstance(post, Identity):
            return out
        act = ActivationLayer(activation=post)
        return self.add((*key, "post"), act, [out], ctx.block_loc("residual"), ctx)

    def shortcut(
        self,
        res: ResidualSpec,
        args: dict[str, Any],
        key: tuple[str, ...],
        block_in: Any,
        body_out: Any,
        ctx: _Ctx,
    ) -> Any:
        if isinstance(res.shortcut, tuple):
            loc = ctx.block_loc("residual", "shortcut")
            layers = self.instantiate(res.shortcut, args, loc, ctx)
            sub = ctx.at("residual", "shortcut")
            return self.scope(layers, (*key, "shortcut"), {"input": block_in}, block_in, sub)
        norm = res.projection_norm or self.model.defaults.norm
        layer = Shortcut(mode=res.shortcut, norm=norm)
        loc = ctx.block_loc("residual", "shortcut")
        return self.add((*key, "shortcut"), layer, [block_in], loc, ctx, refs=[body_out])

    def _zero_last_norm(self, first: int, ctx: _Ctx) -> None:
        for draft in reversed(self.drafts[first:]):
            layer = draft.node.layer
            norm = getattr(layer, "norm", None) or self.model.defaults.norm
            if isinstance(layer, _NORM_LAYERS) or (
                isinstance(layer, WeightLayer) and norm != "none"
            ):
                draft.node = replace(draft.node, zero_init_scale=True)
                return
        msg = "zero_init_last_norm: the residual body has no norm layer to zero-initialise"
        self.issues.append((ctx.block_loc("residual", "zero_init_last_norm"), msg, True))

    def instantiate(
        self, templates: Sequence[Any], args: Mapping[str, Any], loc: Loc, ctx: _Ctx
    ) -> list[LayerBase]:
        """Substitute the arguments into each raw template and validate it as a layer."""
        layers: list[LayerBase] = []
        for j, raw in enumerate(templates):
            try:
                layers.append(_layer_adapter().validate_python(substitute(raw, args)))
            except ValidationError as err:
                for e in err.errors():
                    msg = f"{e['msg']} ({ctx.text}, with {_show_args(args)})"
                    self.issues.append(((*loc, j, *e["loc"]), msg, e.get("input")))
        return layers


def _show_args(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items()) or "no arguments"


@dataclass(frozen=True)
class _Ctx:
    """Where the expander is: spec path of the current list, block nesting, message context."""

    loc: Loc
    depth: int = 0
    block: tuple[str, int] | None = None
    block_name: str | None = None
    text: str = ""
    trainable: bool = True
    lr_scale: float = 1.0

    def at(self, *parts: str | int) -> _Ctx:
        return _Ctx(
            (*self.block_loc(), *parts),
            self.depth,
            self.block,
            self.block_name,
            self.text,
            self.trainable,
            self.lr_scale,
        )

    def block_loc(self, *parts: str | int) -> Loc:
        return ("blocks", self.block_name, *parts) if self.block_name else self.loc

    def enter(self, use: BlockUse, loc: Loc, rep: int, key: tuple[str, ...]) -> _Ctx:
        text = (
            f"block '{use.block}' used at model.{format_path(loc)}, repetition {rep + 1} of "
            f"{use.repeat} ({'.'.join(key)}.{rep})"
        )
        if self.text:
            text = f"{text}, inside {self.text}"
        return _Ctx(
            loc,
            self.depth + 1,
            (use.block, rep),
            use.block,
            text,
            self.trainable and use.trainable,
            self.lr_scale * use.lr_scale,
        )

    def adjust(self, layer: LayerBase) -> LayerBase:
        # A block use's trainable/lr_scale apply to every layer it expands to.
        if self.trainable and self.lr_scale == 1.0:
            return layer
        update = {
            "trainable": self.trainable and layer.trainable,
            "lr_scale": layer.lr_scale * self.lr_scale,
        }
        return layer.model_copy(update=update)


def expand_model(model: ModelSpec) -> Graph:
    """Expand blocks, residual connections and named inputs into a :class:`Graph`.

    Raises a pydantic ``ValidationError`` (locations relative to the model section) listing every
    unknown block/input name, bad block argument, cycle and unused branch.
    """
    exp = _Expander(model)
    inputs = dict(model.inputs) if model.inputs else {"input": tuple(model.input_shape or ())}
    names: dict[str, Any] = {name: f"inputs.{name}" for name in inputs}
    first = f"inputs.{next(iter(inputs))}" if len(inputs) == 1 else None
    last = exp.scope(model.layers, ("layers",), names, first, _Ctx(("layers",)))
    nodes = _resolve(exp, names, inputs)
    outputs = _outputs(exp, model, names, last)
    if exp.issues:
        raise_problems(exp.issues)
    ordered = toposort(exp.issues, nodes, inputs)
    check_used(exp.issues, model.inputs, ordered, outputs)
    if exp.issues:
        raise_problems(exp.issues)
    ordered = mark_heads(model, ordered, outputs)
    return Graph(
        inputs=inputs,
        nodes=tuple(ordered),
        outputs=outputs,
        dict_inputs=model.inputs is not None,
        dict_outputs=model.outputs is not None,
        by_id={n.id: n for n in ordered},
    )


def _lookup(exp: _Expander, ref: Any, seen: frozenset[int] = frozenset()) -> str | None:
    """Resolve a name (following names that are themselves names) to a node or input id."""
    if not isinstance(ref, _Ref):
        return ref
    if id(ref) in seen:
        return None
    if ref.name not in ref.scope:
        known = sorted(ref.scope)
        hint = did_you_mean(ref.name, known)
        msg = f"unknown input '{ref.name}'" + (f"; {hint}" if hint else "")
        exp.issues.append((ref.loc, f"{msg} (known names: {', '.join(known)})", ref.name))
        return None
    return _lookup(exp, ref.scope[ref.name], seen | {id(ref)})


def _resolve(exp: _Expander, names: dict[str, Any], inputs: Mapping[str, Any]) -> list[Node]:
    nodes = []
    for d in exp.drafts:
        ins = tuple(i for i in (_lookup(exp, r) for r in d.inputs) if i is not None)
        refs = tuple(i for i in (_lookup(exp, r) for r in d.refs) if i is not None)
        nodes.append(replace(d.node, inputs=ins, refs=refs))
    return nodes


def _outputs(exp: _Expander, model: ModelSpec, names: dict[str, Any], last: Any) -> dict[str, str]:
    if model.outputs is None:
        out = _lookup(exp, last)
        return {"output": out} if out else {}
    found: dict[str, str] = {}
    keyed = isinstance(model.outputs, Mapping)  # declared outputs: located by name
    for k, name in enumerate(model.outputs):
        out = _lookup(exp, _Ref(names, name, ("outputs", name if keyed else k)))
        if out:
            found[name] = out
    return found
