"""Export a finished run's model for other runtimes: ONNX, an ``ExportedProgram`` or TorchScript.

The exported graph is the model alone: it takes the same tensor the eager model takes (the
preprocessed, reshaped inputs: standardised float32 features or int64 token ids) and returns
its raw outputs (logits, or standardised values for regression). A model with named inputs or
several outputs takes and returns them by name: one graph input per model input (int64 ids for
an embedded column or an integer array, float32 features otherwise) and one graph output per
model output, under the same names. The preprocessing and the
postprocessing are data, written next to the model: ``preprocess.json`` (the run's, with the
standardisation tensors as lists) and ``spec.yaml``. :func:`load_exported` turns an ONNX file and
those two files back into a :class:`~nnspec.run.predict.Predictor`, so ``nnspec predict
model.onnx DATA.csv`` gives the run's own predictions.

Every format is written by torch's own exporters: ``torch.onnx.export`` (its default, dynamo-based
exporter, which needs ``onnxscript``), ``torch.export.export`` + ``torch.export.save``, and
``torch.jit.trace`` (deprecated by torch; kept for runtimes that still load TorchScript). The
batch dimension is dynamic in the first two (``dynamic_shapes``); a trace is shape-generic for
the layers nnspec builds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import torch

from nnspec.errors import CheckpointError, NNSpecError, Problem
from nnspec.run.data import DataInfo
from nnspec.run.predict import Predictor, info_from_json, load_run

__all__ = ["EXPORT_FORMATS", "export_run", "load_exported", "example_input"]

# format name -> the model file's name in the export folder
EXPORT_FORMATS: Final[Mapping[str, str]] = MappingProxyType({
    "onnx": "model.onnx",
    "exported-program": "model.pt2",
    "torchscript": "model.torchscript.pt",
})  # fmt: skip
_TENSORS: Final = ("x_mean", "x_std", "y_mean", "y_std")
_ONNX_INLINE_BYTES: Final = 1 << 30
_TOLERANCE: Final = 1e-4  # float32 kernels of another runtime differ in the last bits only
_ONNX_INSTALL: Final = "pip install 'nnspec[onnx]' (onnx, onnxscript and onnxruntime)"


def _missing_extra(what: str, error: ImportError) -> NNSpecError:
    return NNSpecError(
        Problem(("format",), f"{what} needs the onnx extra ({error.name} is not installed)",
                fix=_ONNX_INSTALL)
    )  # fmt: skip


def example_input(info: DataInfo, batch: int = 2) -> torch.Tensor | dict[str, torch.Tensor]:
    """A batch shaped and typed as the model takes it (zeros: valid token ids too); a dict by
    input name for a model with named inputs."""
    if not info.inputs:
        dtype = torch.int64 if info.tokens or _ids(info, "input") else torch.float32
        return torch.zeros(batch, *info.input_shape, dtype=dtype)
    return {
        name: torch.zeros(batch, *shape, dtype=torch.int64 if _ids(info, name) else torch.float32)
        for name, shape in info.inputs.items()
    }


def _ids(info: DataInfo, name: str) -> bool:
    """Whether the model's input ``name`` is integer ids (an embedded column, integer arrays)."""
    arrays = info.extra.get("arrays", {})
    return name in info.extra.get("vocab", {}) or arrays.get(name, {}).get("kind") == "ids"


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """torch's exporters warn about their own internals (deprecations of torch APIs that torch's
    exporter itself uses, optional torchvision ops, tracer notes on fixed-size loops); they say
    nothing the user can act on, so warnings are silenced while the export runs, and the export
    is verified against the eager model instead (:func:`_verify`)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def _names(out: Any) -> list[str]:
    return list(out) if isinstance(out, dict) else ["output"]


def _write_model(model: torch.nn.Module, x: Any, fmt: str, path: Path) -> None:
    batch = torch.export.Dim("batch")
    named = isinstance(x, dict)
    shapes: Any = {k: {0: batch} for k in x} if named else {0: batch}
    if fmt == "onnx":
        try:
            import onnxscript  # noqa: F401  (torch's exporter needs it; say so before it fails)
        except ImportError as e:
            raise _missing_extra("export to ONNX", e) from e
        # one file, unless the weights pass protobuf's 2 GB limit (then model.onnx.data beside it)
        size = sum(p.numel() * p.element_size() for p in model.parameters())
        # a dict as the last positional argument would be read as keyword arguments: pass it as
        # forward's keyword ``x``, its tensors becoming the graph inputs in name order
        args, kwargs = ((), {"x": x}) if named else ((x,), None)
        torch.onnx.export(
            model, args, str(path), kwargs=kwargs, dynamo=True,
            input_names=list(x) if named else ["input"], output_names=_names(model(x)),
            dynamic_shapes={"x": shapes} if named else (shapes,), verbose=False,
            external_data=size > _ONNX_INLINE_BYTES,
        )  # fmt: skip
    elif fmt == "exported-program":
        torch.export.save(torch.export.export(model, (x,), dynamic_shapes=(shapes,)), str(path))
    else:  # strict=False: a model returning a dict by output name traces too
        torch.jit.save(torch.jit.trace(model, (x,), strict=False), str(path))


def _run_exported(path: Path, fmt: str, x: Any) -> Any:
    if fmt == "onnx":
        return _OnnxModel(path)(x)
    if fmt == "exported-program":
        return torch.export.load(str(path)).module()(x)
    return torch.jit.load(str(path))(x)


def _random_input(info: DataInfo, batch: int) -> Any:
    """A batch of another size than the export's example: normal features, ids 0 and 1 (0
    alone for a one-id vocabulary)."""
    gen = torch.Generator().manual_seed(0)
    example = example_input(info, batch)
    parts = example if isinstance(example, dict) else {"input": example}
    vocab = info.extra.get("vocab", {})
    drawn = {
        k: torch.randint_like(t, min(2, vocab.get(k, 2)), generator=gen) if t.dtype == torch.int64
        else torch.randn(t.shape, generator=gen)
        for k, t in parts.items()
    }  # fmt: skip
    return drawn if isinstance(example, dict) else drawn["input"]


def _verify(model: torch.nn.Module, path: Path, fmt: str, info: DataInfo) -> None:
    """Run the written file on a batch of another size and compare with the eager model: an
    export that does not reproduce the model (a shape baked in, an op the runtime computes
    differently) is an error, never a file left for the user to discover."""
    x = _random_input(info, 3)
    with torch.inference_mode():
        want, got = model(x), _run_exported(path, fmt, x)
    wants = want if isinstance(want, dict) else {"output": want}
    gots = got if isinstance(got, dict) else {"output": got}
    diff, found = 0.0, ""
    for name, w in wants.items():
        g = gots.get(name)
        if g is None or g.shape != w.shape:
            diff = math.inf
            found = f"output {name!r} of shape {None if g is None else tuple(g.shape)} " \
                    f"instead of {tuple(w.shape)}"  # fmt: skip
            break
        diff = max(diff, float((w.float() - g.float()).abs().max()))
    if not diff <= _TOLERANCE:
        raise NNSpecError(Problem(
            ("format",), f"the {fmt} export does not reproduce the model",
            expected=f"outputs within {_TOLERANCE} of the eager model's on a batch of 3",
            found=f"max abs difference {diff:.3g}" if math.isfinite(diff) else found,
            fix="try --format exported-program, or report the model to nnspec",
        ))  # fmt: skip


def _preprocess_json(run_dir: Path, info: DataInfo, fmt: str) -> dict[str, Any]:
    meta = json.loads((run_dir / "preprocess.json").read_text())
    meta["tensors"] = {
        k: getattr(info, k).tolist() for k in _TENSORS if getattr(info, k) is not None
    }
    example = example_input(info, 1)
    meta["export"] = {"format": fmt, "model": EXPORT_FORMATS[fmt], "torch": torch.__version__}
    if isinstance(example, dict) or info.outputs:  # the graph's inputs and outputs by name
        parts = example if isinstance(example, dict) else {"input": example}
        meta["export"]["inputs"] = [
            {"name": k, "dtype": str(t.dtype).removeprefix("torch."),
             "shape": ["batch", *t.shape[1:]]}
            for k, t in parts.items()
        ]  # fmt: skip
        heads = info.outputs or {"output": info}
        meta["export"]["outputs"] = [{"name": k, "shape": ["batch", h.n_outputs]}
                                     for k, h in heads.items()]  # fmt: skip
        return meta
    meta["export"]["input"] = {"name": "input", "dtype": str(example.dtype).removeprefix("torch."),
                               "shape": ["batch", *info.input_shape]}  # fmt: skip
    meta["export"]["output"] = {"name": "output", "shape": ["batch", info.n_outputs]}
    return meta


def export_run(run_dir: str | Path, fmt: str, out: str | Path | None = None) -> Path:
    """Export a finished run's model (best weights, eval mode) in ``fmt``.

    Args:
        run_dir: a finished run.
        fmt: one of :data:`EXPORT_FORMATS`.
        out: the export folder (default ``RUN_DIR/export``); written whole or not at all.

    Returns:
        The model file's path; ``preprocess.json`` and ``spec.yaml`` lie next to it.

    Example:
        >>> export_run("runs/iris/20250101-120000", "onnx")  # doctest: +SKIP
        PosixPath('runs/iris/20250101-120000/export/model.onnx')
    """
    if fmt not in EXPORT_FORMATS:
        raise NNSpecError(Problem(("format",), f"unknown export format {fmt!r}",
                                  expected=" | ".join(EXPORT_FORMATS), found=fmt))  # fmt: skip
    run = Path(run_dir)
    predictor = load_run(run)
    folder = Path(out) if out is not None else run / "export"
    folder.parent.mkdir(parents=True, exist_ok=True)
    # built in a temporary sibling and renamed into place: a failed export leaves nothing behind
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model = predictor.model.eval()
        with _quiet_exporters(), torch.no_grad():
            _write_model(model, example_input(predictor.info), fmt, tmp / EXPORT_FORMATS[fmt])
            _verify(model, tmp / EXPORT_FORMATS[fmt], fmt, predictor.info)
        meta = _preprocess_json(run, predictor.info, fmt)
        (tmp / "preprocess.json").write_text(json.dumps(meta, indent=2) + "\n")
        shutil.copyfile(run / "spec.yaml", tmp / "spec.yaml")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder / EXPORT_FORMATS[fmt]


class _OnnxModel(torch.nn.Module):
    """An onnxruntime session called like the eager model: a tensor in, a tensor out."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError as e:
            raise _missing_extra("predicting with an ONNX file", e) from e
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def forward(self, x: Any) -> Any:
        parts = x if isinstance(x, dict) else {"input": x}
        feeds = {k: np.ascontiguousarray(v.numpy()) for k, v in parts.items()}
        names = [o.name for o in self.session.get_outputs()]
        outs = [torch.from_numpy(o) for o in self.session.run(names, feeds)]
        return outs[0] if names == ["output"] else dict(zip(names, outs, strict=True))


def load_exported(path: str | Path) -> Predictor:
    """A :class:`Predictor` over an exported ONNX model and the preprocessing written next to it.

    Raises:
        CheckpointError: the folder lacks ``preprocess.json`` or ``spec.yaml``, or the file is
            not an ONNX export of nnspec.
    """
    from nnspec.io import load
    from nnspec.run.model import resolve_sizes

    model_file = Path(path)
    folder = model_file.parent
    missing = [n for n in ("preprocess.json", "spec.yaml") if not (folder / n).is_file()]
    if missing or not model_file.is_file() or model_file.suffix != ".onnx":
        raise CheckpointError(Problem(
            ("run_dir",), f"{model_file} is not an ONNX export of an nnspec run",
            expected="model.onnx with preprocess.json and spec.yaml next to it "
            "(written by `nnspec export RUN_DIR --format onnx`)",
            found=f"missing {', '.join(missing)}" if missing else model_file.name,
        ))  # fmt: skip
    try:
        meta = json.loads((folder / "preprocess.json").read_text())
        tensors = {k: torch.tensor(v, dtype=torch.float32)
                   for k, v in meta.get("tensors", {}).items() if k in _TENSORS}  # fmt: skip
        info = info_from_json(meta, tensors)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(
            Problem(("run_dir",), f"{folder / 'preprocess.json'} is not readable: {e}")
        ) from e
    spec = resolve_sizes(load(folder / "spec.yaml"), info)
    return Predictor(spec, _OnnxModel(model_file), info, folder)
