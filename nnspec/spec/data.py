"""The data section: where samples come from, how they are split, scaled and batched."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, Literal

from pydantic import Field, model_validator

from nnspec.errors import did_you_mean
from nnspec.spec.base import Fraction, NonNegInt, PosInt, Spec, field_error
from nnspec.spec.images import AugmentSpec, ImageSpec

__all__ = [
    "SplitSpec",
    "DataSpec",
    "ImputeSpec",
    "ColumnType",
    "ImputeName",
    "SOURCE_NAMES",
    "SOURCE_PREFIXES",
]

# The data sources by prefix: the names a prefix accepts (None: a file path). The run layer's
# loader registry (nnspec.run.sources.SOURCES) has one loader per entry; a test keeps them equal,
# so `nnspec validate` refuses an unknown source without importing the loaders.
SOURCE_NAMES: Final[Mapping[str, tuple[str, ...] | None]] = MappingProxyType(
    {
        "sklearn": ("digits", "breast_cancer", "wine", "iris", "diabetes"),
        "synthetic": ("classification", "regression", "sequence_count", "sequence_compare"),
        "csv": None,
        "parquet": None,
        "arrow": None,
        "feather": None,
        "npz": None,
        "npy": None,
        "images": None,
    }
)
SOURCE_PREFIXES: Final = (*(f"{p}:" for p in SOURCE_NAMES), "user")

ColumnType = Literal["auto", "numeric", "categorical", "binary", "ignore"]
ImputeName = Literal["mean", "median", "most_frequent", "constant"]


class SplitSpec(Spec):
    """Train/val/test fractions (DATA-7); shuffled, seeded, stratified for classification."""

    train: Fraction = Field(default=0.7, description="Training fraction.")
    val: float = Field(
        default=0.2, ge=0, lt=1, description="Validation fraction (0 disables validation)."
    )
    test: float = Field(default=0.1, ge=0, lt=1, description="Test fraction.")
    stratify: bool | None = Field(
        default=None,
        description="Stratify on the class label; None = yes for classification tasks.",
    )

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitSpec:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise field_error(
                ("train",),
                "split fractions must sum to 1, "
                f"found {self.train}+{self.val}+{self.test}={total:g}",
                total,
            )
        return self


class ImputeSpec(Spec):
    """How missing cells of a table's feature columns are filled (values fitted on the training
    split only, DATA-5)."""

    numeric: ImputeName = Field(
        default="mean", description="Numeric columns: mean, median, most_frequent or constant."
    )
    categorical: Literal["most_frequent", "constant"] = Field(
        default="constant",
        description="Categorical and binary columns: most_frequent, or constant (missing is a "
        "category of its own; binary columns then take fill_value).",
    )
    columns: dict[str, ImputeName] = Field(
        default_factory=dict, description="Per-column strategy, overriding the two above."
    )
    fill_value: float = Field(
        default=0.0, description="The value `constant` fills numeric cells with."
    )
    indicator: bool = Field(
        default=False,
        description="Add a 0/1 input per column that had missing training cells, set where the "
        "cell was missing.",
    )


class DataSpec(Spec):
    """Where the data comes from.

    ``source``: ``sklearn:digits|breast_cancer|wine|iris|diabetes`` (bundled, no download),
    ``synthetic:classification|regression|sequence_count|sequence_compare``, tables
    ``csv:PATH``, ``parquet:PATH``, ``arrow:PATH``, ``feather:PATH`` (typed columns: ``columns``,
    ``impute``, ``max_categories``), ``npz:PATH`` (arrays ``x`` and ``y``, or the key named by
    ``target``), ``npy:PATH`` (a 2-D table whose last column is the target), ``images:PATH`` (a
    folder with one subfolder of PNG/JPEG files per class; ``images`` says how they fit
    ``input_shape``); relative paths resolve against the spec file's folder. ``user``: arrays
    passed to :func:`nnspec.train`.
    """

    source: str = Field(default="sklearn:digits", description="Data source (see the class doc).")
    target: str | tuple[str, ...] | None = Field(
        default=None, description="Target column(s) of a CSV, or the target array's key in an .npz."
    )
    features: tuple[str, ...] | None = Field(
        default=None, description="Feature columns of a CSV (default: every non-target column)."
    )
    split: SplitSpec = Field(default_factory=SplitSpec, description="Split fractions.")
    standardize: bool = Field(
        default=True, description="Standardise features with training-split statistics (DATA-4/5)."
    )
    standardize_target: bool = Field(
        default=True,
        description="Regression: train on standardised targets (metrics stay in original units).",
    )
    batch_size: PosInt = Field(default=64, description="Training batch size (TRAIN-1).")
    eval_batch_size: PosInt = Field(
        default=1024, description="Batch size for validation and test passes."
    )
    shuffle: bool = Field(default=True, description="Reshuffle training data every epoch (DATA-8).")
    n_samples: PosInt | None = Field(
        default=None, description="Synthetic sources: how many samples."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Synthetic generators: classification/regression take n_features, "
        "n_informative, n_classes, class_sep, noise; sequence_count/sequence_compare (int64 "
        "token sequences for an embedding) take length, vocab_size, token_a, token_b, max_count.",
    )
    columns: dict[str, ColumnType] = Field(
        default_factory=dict,
        description="Tables: column -> numeric, categorical, binary or ignore; unlisted columns "
        "are `auto` (inferred on the training split: numbers -> numeric, two values -> binary, "
        "text -> categorical).",
    )
    impute: ImputeSpec = Field(
        default_factory=ImputeSpec, description="Tables: how missing feature cells are filled."
    )
    max_categories: PosInt = Field(
        default=32,
        description="Tables: a categorical column is one-hot encoded over its most frequent "
        "max_categories training values plus one `unknown` slot (rarer and unseen values).",
    )
    num_workers: NonNegInt = Field(
        default=0, description="DataLoader workers for the out-of-memory path."
    )
    in_memory: Literal["auto", "yes", "no"] = Field(
        default="auto",
        description="auto/yes: batch by slicing in-memory tensors (fast); no: collate through a "
        "DataLoader with num_workers (same batch order).",
    )

    images: ImageSpec = Field(
        default_factory=ImageSpec, description="images: sources: how each file fits input_shape."
    )
    augment: AugmentSpec = Field(
        default_factory=AugmentSpec,
        description="Random transformations of the training batches (DATA-10; inputs shaped "
        "(C, H, W); all off by default); never applied to validation, test or predict.",
    )

    @model_validator(mode="after")
    def _known_source(self) -> DataSpec:
        prefix, colon, name = self.source.partition(":")
        if self.source == "user" or (colon and prefix in SOURCE_NAMES):
            names = SOURCE_NAMES.get(prefix)
            if names is None or name in names:
                return self
            hint = did_you_mean(name, names)
            raise field_error(
                ("source",),
                f"unknown {prefix} source '{name}'"
                + (f"; {hint}" if hint else "")
                + f"; expected one of {', '.join(names)}",
                self.source,
            )
        raise field_error(
            ("source",),
            f"unknown data source '{self.source}'; expected one of "
            + ", ".join(p + ("..." if p.endswith(":") else "") for p in SOURCE_PREFIXES),
            self.source,
        )
