"""The data section: where samples come from, how they are split, scaled and batched."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from nnspec.spec.base import Fraction, NonNegInt, PosInt, Spec, field_error

__all__ = ["SplitSpec", "DataSpec", "SOURCE_PREFIXES"]

SOURCE_PREFIXES = ("sklearn:", "synthetic:", "csv:", "npz:", "npy:", "user")


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


class DataSpec(Spec):
    """Where the data comes from.

    ``source``: ``sklearn:digits|breast_cancer|wine|iris|diabetes`` (bundled, no download),
    ``synthetic:classification|regression|sequence_count|sequence_compare``, ``csv:PATH``,
    ``npz:PATH`` (arrays ``x`` and ``y``, or the key named by ``target``), ``npy:PATH`` (a 2-D
    table whose last column is the target); relative paths resolve against the spec file's
    folder. ``user``: arrays passed to :func:`nnspec.train`.
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
    num_workers: NonNegInt = Field(
        default=0, description="DataLoader workers for the out-of-memory path."
    )
    in_memory: Literal["auto", "yes", "no"] = Field(
        default="auto",
        description="auto/yes: batch by slicing in-memory tensors (fast); no: collate through a "
        "DataLoader with num_workers (same batch order).",
    )

    @model_validator(mode="after")
    def _known_source(self) -> DataSpec:
        if not self.source.startswith(SOURCE_PREFIXES):
            raise field_error(
                ("source",),
                f"unknown data source '{self.source}'; expected one of "
                + ", ".join(p + ("..." if p.endswith(":") else "") for p in SOURCE_PREFIXES),
                self.source,
            )
        return self
