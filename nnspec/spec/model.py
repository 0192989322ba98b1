"""The model section: input shape, defaults for hidden layers, reusable blocks, the layer list."""

# No `from __future__ import annotations` in the schema modules on the model's build path: pydantic
# would eval every field's annotation string one by one at import (bench/bench_import.py);
# forward references are quoted where needed.

from typing import Annotated, Final, Literal, Self

from pydantic import (
    Field,
    PrivateAttr,
    WithJsonSchema,
    WrapSerializer,
    WrapValidator,
    model_validator,
)

from nnspec.spec import sequence as _sequence  # noqa: F401  (registers the sequence layer kinds)
from nnspec.spec.activations import ActivationSpec, ReLU
from nnspec.spec.base import PosInt, Prob, Spec, field_error
from nnspec.spec.blocks import BlockDef, BlockUse
from nnspec.spec.expand import expand_model
from nnspec.spec.graph import MERGE_KINDS, Graph, raise_problems
from nnspec.spec.heads import OutputSpec, declared_outputs
from nnspec.spec.init import InitSpec, Preset
from nnspec.spec.layers import (
    AlphaDropout,
    Dropout,
    Dropout2d,
    LayerBase,
    LayerSpec,
    NormName,
    WeightLayer,
    _auto_or,
    _auto_or_dump,
    auto_or,
)
from nnspec.spec.reserved import is_reserved, name_clash
from nnspec.spec.weights import InitFrom

__all__ = ["LayerDefaults", "BlockDef", "ModelSpec", "head_index"]


class LayerDefaults(Spec):
    """Inherited by every hidden weight layer that does not set the field itself.

    The head does not inherit them.
    """

    activation: ActivationSpec = Field(
        default_factory=ReLU, description="Hidden activation (ACT-1)."
    )
    norm: NormName = Field(
        default="none", description="Norm between weight op and activation (NORM-2)."
    )
    init: InitSpec = Field(default_factory=Preset, description="`auto`: by activation (INIT-1).")
    dropout: Prob = Field(default=0.0, description="Dropout after each hidden activation.")
    bias: bool | None = Field(default=None, description="None: bias on unless batch norm follows.")


def head_index(layers: tuple[LayerBase, ...]) -> int | None:
    """Index of the head: the last weight layer of the top-level list (None if there is none)."""
    for i in range(len(layers) - 1, -1, -1):
        if isinstance(layers[i], WeightLayer):
            return i
    return None


AUTO: Final = "auto"


def auto_sizes(model: "ModelSpec") -> list[tuple[tuple[str | int, ...], str]]:
    """Fields of ``model`` spelt ``auto`` (sizes the data decides), with what may be ``auto``.

    Example:
        >>> m = ModelSpec(input_shape="auto", layers=[{"linear": 8}, {"linear": "auto"}])
        >>> [path for path, _ in auto_sizes(m)]
        [('input_shape',), ('layers', 1, 'out_features')]
    """
    found: list[tuple[tuple[str | int, ...], str]] = []
    if model.input_shape == AUTO:
        found.append((("input_shape",), "input_shape of a plain layer list"))
    for name, shape in (model.inputs or {}).items():
        if shape == AUTO:
            found.append((("inputs", name), "a named input of a model trained on a table"))
    for i, layer in enumerate(model.layers):
        if getattr(layer, "out_features", None) == AUTO:
            where = "the last linear layer of a layer list, or an output's layer"
            found.append((("layers", i, "out_features"), where))
        if getattr(layer, "num_embeddings", None) == AUTO:
            found.append((("layers", i, "num_embeddings"),
                          "an embedding reading a categorical column's input"))  # fmt: skip
    return found


def _auto_allowed(model: "ModelSpec", path: tuple[str | int, ...]) -> bool:
    """Whether the data can decide the ``auto`` size at ``path`` (see :func:`auto_sizes`)."""
    outputs = declared_outputs(model)
    if path[0] == "inputs" or (path[0] == "input_shape" and (outputs or not model.is_graph)):
        return True
    layer = model.layers[int(path[1])]
    if path[2] == "num_embeddings":  # reads one named input of the model directly
        return model.inputs is not None and len(layer.inputs or ()) == 1
    if outputs is not None:
        return layer.name in outputs
    return not model.is_graph and path[1] == head_index(model.layers)


Shape = Annotated[tuple[PosInt, ...], Field(min_length=1)]


class ModelSpec(Spec):
    """A network: per-sample ``input_shape`` and ``layers``; shapes of every layer are inferred."""

    input_shape: Annotated[
        Shape | Literal["auto"] | None,
        auto_or(Shape | None),
        WrapValidator(_auto_or),
        WrapSerializer(_auto_or_dump),
        WithJsonSchema(
            {"anyOf": [{"type": "array", "items": {"type": "integer", "exclusiveMinimum": 0},
                        "minItems": 1}, {"const": "auto"}, {"type": "null"}]}
        ),
    ] = Field(
        default=None,
        description="Shape of one sample without the batch dim: [features], [C, H, W], [T], "
        "...; `auto`: the width of a table's features after encoding, taken from the data when "
        "training (or name several inputs in `inputs`).",
    )  # fmt: skip
    inputs: dict[str, Shape | Literal["auto"]] | None = Field(
        default=None,
        description="Several named model inputs, name -> per-sample shape (forward takes a dict); "
        "instead of input_shape. `auto` (training on a table): a name that is a categorical "
        "column is that column's category ids (shape [1], for an embedding), the one other name "
        "the table's remaining features after encoding.",
    )
    outputs: (
        Annotated[tuple[str, ...], Field(min_length=1)]
        | Annotated[dict[str, OutputSpec], Field(min_length=1)]
        | None
    ) = Field(
        default=None,
        description="Names of the layers whose outputs the model returns (forward returns a dict); "
        "default: the last layer's output. A mapping name -> {task, target, loss, weight, "
        "metrics} declares what each output is trained for (several outputs).",
    )
    defaults: LayerDefaults = Field(
        default_factory=LayerDefaults, description="Hidden-layer defaults."
    )
    blocks: dict[str, BlockDef] = Field(default_factory=dict, description="Reusable blocks.")
    layers: tuple[LayerSpec, ...] = Field(description="The layers, input to output.")
    init_from: InitFrom | None = Field(
        default=None,
        description="Load weights saved elsewhere (a run, a .pt or .safetensors file) after "
        "nnspec's init; keys matched through `map`, a report of what was loaded.",
    )

    # (graph, the sections it was expanded from): model_copy(update=...) keeps private attributes,
    # so the cache is used only while those very objects are still this spec's.
    _graph: tuple[Graph, tuple[object, ...]] | None = PrivateAttr(default=None)

    @property
    def is_graph(self) -> bool:
        """True when the model needs the graph compiler (blocks, named inputs, merges)."""
        return (
            self.inputs is not None
            or self.outputs is not None
            or any(
                isinstance(layer, (BlockUse, *MERGE_KINDS)) or layer.inputs is not None
                for layer in self.layers
            )
        )

    def graph(self) -> Graph:
        """The model expanded into primitive layers (:func:`nnspec.spec.expand.expand_model`)."""
        sources = self._graph_sources()
        cached = self._graph
        if cached is None or any(a is not b for a, b in zip(cached[1], sources, strict=True)):
            cached = self._graph = (expand_model(self), sources)
        return cached[0]

    def _graph_sources(self) -> tuple[object, ...]:
        return (self.layers, self.blocks, self.inputs, self.outputs, self.input_shape,
                self.defaults)  # fmt: skip

    @model_validator(mode="after")
    def _one_input_form(self) -> Self:
        if (self.input_shape is None) == (self.inputs is None):
            found = "both" if self.input_shape is not None else "neither"
            raise field_error(
                ("input_shape",),
                "give exactly one of input_shape (one input) or inputs (named inputs); "
                f"found {found}",
                None,
            )
        return self

    @model_validator(mode="after")
    def _auto_sizes_placed(self) -> Self:
        # `auto` sizes are resolved from the data by the run layer, for a plain layer list only:
        # the input width, and the head's out_features.
        bad = [
            (path, f"`auto` is allowed for {where}", "auto")
            for path, where in auto_sizes(self)
            if not _auto_allowed(self, path)
        ]
        if bad:
            raise_problems(bad)
        return self

    @model_validator(mode="after")
    def _expand_graph(self) -> Self:
        # Validation-time expansion: unknown blocks/inputs, bad arguments, cycles and unused
        # branches are spec errors with paths, before anything is compiled.
        if self.is_graph:
            self.graph()
        return self

    @model_validator(mode="after")
    def _names_free_in_torch(self) -> Self:
        # Graph models (blocks, branches) are checked by the expander, scope by scope.
        if not self.is_graph:
            clashes = [
                (("layers", i, "name"), name_clash(layer.name), layer.name)
                for i, layer in enumerate(self.layers)
                if layer.name is not None and is_reserved(layer.name)
            ]
            if clashes:
                raise_problems(clashes)
        return self

    @model_validator(mode="after")
    def _no_dropout_on_output(self) -> Self:
        # OUT-5: dropout on the output layer randomly zeroes logits/predictions.
        if not self.layers:
            raise field_error(("layers",), "a model needs at least one layer", [])
        msg = (
            "dropout on the output layer (OUT-5) randomly zeroes predictions; "
            "fix: remove it from the last layer and regularise the hidden layers instead"
        )
        last = len(self.layers) - 1
        if isinstance(self.layers[last], (Dropout, Dropout2d, AlphaDropout)):
            raise field_error(("layers", last, "kind"), msg, self.layers[last].kind)
        head = head_index(self.layers)
        if head is not None:
            dropout = getattr(self.layers[head], "dropout", None)
            if dropout:
                raise field_error(("layers", head, "dropout"), msg, dropout)
        return self
