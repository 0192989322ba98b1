"""Arrays bound by name to a model's named inputs and outputs (``nnspec.train(spec, data={"x":
{...}, "y": {...}})``): binding, training-split statistics, every problem at once, and in the
slow tier a run whose predictions (dict, .npz, ``nnspec predict``) reproduce its test metrics."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nnspec.errors import DataError
from nnspec.run.data import prepare_data
from nnspec.run.named_arrays import encode_arrays
from nnspec.run.sources import user_data
from nnspec.run.splitting import split_indices
from nnspec.spec import ExperimentSpec

N = 1200


def _arrays(n: int = N, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Six numeric features on their own scales, a 40-id city, a 3-class segment that depends
    on both, and a spend that depends on both."""
    rng = np.random.default_rng(seed)
    tabular = rng.normal(size=(n, 6)) * [1, 5, 10, 0.1, 2, 3] + [0, 50, -20, 1, 0, 7]
    city = rng.integers(0, 40, size=n)
    effect = np.random.default_rng(99).normal(size=40)
    z = tabular[:, 0] - (tabular[:, 1] - 50) / 5 + 2 * effect[city]
    segment = np.digitize(z, np.quantile(z, [1 / 3, 2 / 3]))
    spend = 100 + 10 * tabular[:, 3] + 20 * effect[city] + rng.normal(size=n)
    return ({"tabular": tabular.astype(np.float32), "city": city},
            {"segment": segment, "spend": spend})  # fmt: skip


def _spec(tmp: Path, **train: Any) -> ExperimentSpec:
    return ExperimentSpec.model_validate({
        "name": "arrays", "seed": 0,
        "data": {"source": "user", "batch_size": 64},
        "model": {
            "inputs": {"tabular": "auto", "city": "auto"},
            "outputs": {"segment": {"task": "classification", "metrics": ["accuracy"]},
                        "spend": {"task": "regression", "weight": 0.5, "metrics": ["r2"]}},
            "layers": [
                {"kind": "linear", "name": "tab", "out_features": 32, "inputs": ["tabular"]},
                {"kind": "embedding", "name": "emb", "num_embeddings": "auto",
                 "embedding_dim": 8, "inputs": ["city"]},
                {"kind": "flatten", "name": "flat"},
                {"kind": "concat", "name": "joined", "inputs": ["tab", "flat"]},
                {"kind": "linear", "name": "trunk", "out_features": 64},
                {"kind": "linear", "name": "segment", "out_features": "auto", "inputs": ["trunk"]},
                {"kind": "linear", "name": "spend", "out_features": "auto", "inputs": ["trunk"]},
            ],
        },
        "optim": {"kind": "adamw", "lr": 3e-3},
        "train": {"epochs": 30, "num_threads": 1, "progress": "none", "output_dir": str(tmp),
                  "early_stopping": {"monitor": "val_segment_accuracy", "patience": 8}, **train},
    })  # fmt: skip


def _train_rows(spec: ExperimentSpec, segment: np.ndarray) -> list[np.ndarray]:
    return split_indices(len(segment), segment, spec, "classification")


def test_arrays_bind_by_name_with_training_split_statistics(tmp_path: Path) -> None:
    x, y = _arrays()
    spec = _spec(tmp_path)
    bundle = prepare_data(spec, raw=user_data({"x": x, "y": y}))
    train = bundle.train.tensors  # type: ignore[union-attr]
    assert set(train) == {"tabular", "city", "target.segment", "target.spend"}
    assert train["city"].dtype == torch.int64 and tuple(train["city"].shape[1:]) == (1,)
    assert bundle.info.inputs == {"tabular": (6,), "city": (1,)}
    assert bundle.info.extra["vocab"] == {"city": int(x["city"].max()) + 1}
    tr, va, _ = _train_rows(spec, y["segment"])
    assert torch.equal(train["city"][:, 0], torch.from_numpy(x["city"][tr]))
    meta = bundle.info.extra["arrays"]["tabular"]
    rows = x["tabular"][tr].astype(np.float64)
    np.testing.assert_allclose(meta["mean"], rows.mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(meta["std"], rows.std(axis=0), rtol=1e-6)
    t = train["tabular"].double()
    assert t.mean(0).abs().max() < 1e-5 and (t.std(0, unbiased=False) - 1).abs().max() < 1e-5
    val = bundle.val.tensors["tabular"].double()  # type: ignore[union-attr]
    assert val.mean(0).abs().max() > 1e-3  # validation rows are scaled with training statistics
    segment = bundle.train.tensors["target.segment"]  # type: ignore[union-attr]
    assert torch.equal(segment, torch.from_numpy(y["segment"][tr]).long())
    spend = bundle.train.tensors["target.spend"].double()  # type: ignore[union-attr]
    assert abs(float(spend.mean())) < 1e-5  # regression targets standardised on training rows
    assert len(bundle.val) == len(va)  # type: ignore[arg-type]


def test_tensors_and_a_tuple_bind_like_arrays(tmp_path: Path) -> None:
    x, y = _arrays(300)
    spec = _spec(tmp_path)
    a = prepare_data(spec, raw=user_data({"x": x, "y": y}))
    t = prepare_data(spec, raw=user_data(({k: torch.from_numpy(v) for k, v in x.items()}, y)))
    for name in a.train.tensors:  # type: ignore[union-attr]
        assert torch.equal(a.train.tensors[name], t.train.tensors[name])  # type: ignore[union-attr]


def test_every_problem_of_the_names_is_reported_at_once(tmp_path: Path) -> None:
    x, y = _arrays(100)
    with pytest.raises(DataError) as err:
        prepare_data(_spec(tmp_path), raw=user_data(
            {"x": {"tabular": x["tabular"], "cty": x["city"]}, "y": {"segment": y["segment"]}}
        ))  # fmt: skip
    text = str(err.value)
    assert "data.x.city: no array for the model's input 'city'" in text
    assert "data.x.cty: 'cty' is not an input of the model" in text
    assert "did you mean 'city'?" in text
    assert "data.y.spend: no array for the model's output 'spend'" in text
    assert len(err.value.problems) == 3


def test_every_problem_of_the_values_is_reported_at_once(tmp_path: Path) -> None:
    x, y = _arrays(100)
    bad_x = {"tabular": x["tabular"].copy(), "city": x["city"].copy()}
    bad_x["tabular"][7, 2] = np.nan
    bad_x["city"][3] = -1
    bad_y = {"segment": y["segment"], "spend": y["spend"].copy()}
    bad_y["spend"][5] = np.inf
    with pytest.raises(DataError) as err:
        prepare_data(_spec(tmp_path), raw=user_data({"x": bad_x, "y": bad_y}))
    text = str(err.value)
    assert "data.x.tabular: input 'tabular' holds NaN or inf (1 sample, first: sample 7)" in text
    assert "data.x.city: input 'city' holds negative ids (1 sample, first: sample 3)" in text
    assert "data.y.spend: output 'spend': 1 target is NaN or inf (first: sample 5)" in text
    short = {"tabular": x["tabular"][:99], "city": x["city"]}
    with pytest.raises(DataError, match=r"the same number each.*x\['tabular'\]: 99"):
        prepare_data(_spec(tmp_path), raw=user_data({"x": short, "y": y}))


@pytest.mark.parametrize(
    ("tabular", "found"),
    [
        (np.zeros((0, 6), np.float32), "the arrays hold no samples"),
        (np.float32(3.0), "x['tabular']: a scalar"),
        ([[1.0, 2.0], [3.0]], "data.x.tabular: not an array of one shape"),
        (torch.zeros(100, 6, requires_grad=True), None),  # a tensor that needs grad: fine
    ],
)  # fmt: skip
def test_odd_arrays_are_data_errors_not_crashes(tmp_path: Path, tabular: Any, found: Any) -> None:
    x, y = _arrays(100)
    if isinstance(tabular, np.ndarray) and tabular.ndim and not len(tabular):
        x, y = {k: v[:0] for k, v in x.items()}, {k: v[:0] for k, v in y.items()}
    raw = user_data({"x": {"tabular": tabular, "city": x["city"]}, "y": y})
    if found is None:
        assert len(prepare_data(_spec(tmp_path), raw=raw).train) > 0  # type: ignore[arg-type]
        return
    with pytest.raises(DataError, match=re.escape(found)):
        prepare_data(_spec(tmp_path), raw=raw)


def test_an_input_no_embedding_reads_is_features_even_when_integers(tmp_path: Path) -> None:
    x, y = _arrays(200)
    counts = np.random.default_rng(1).integers(0, 50, size=(200, 6))
    bundle = prepare_data(_spec(tmp_path), raw=user_data({"x": {**x, "tabular": counts}, "y": y}))
    assert bundle.train.tensors["tabular"].dtype == torch.float32  # type: ignore[union-attr]
    assert bundle.info.extra["arrays"]["tabular"]["kind"] == "features"
    floats = {**x, "city": x["city"].astype(np.float64)}
    with pytest.raises(DataError, match="input 'city' feeds an embedding: it takes integer ids"):
        prepare_data(_spec(tmp_path), raw=user_data({"x": floats, "y": y}))


def test_mapping_and_array_must_match_the_models_inputs(tmp_path: Path) -> None:
    x, y = _arrays(100)
    with pytest.raises(DataError, match="the model has named inputs"):
        prepare_data(_spec(tmp_path), raw=user_data({"x": x["tabular"], "y": y}))
    plain = ExperimentSpec.model_validate({
        "data": {"source": "user"}, "task": "classification",
        "model": {"input_shape": [6], "layers": [{"linear": 3}]},
    })  # fmt: skip
    with pytest.raises(DataError, match="the model has one input, and a mapping was given"):
        prepare_data(plain, raw=user_data({"x": x, "y": y["segment"]}))
    with pytest.raises(DataError, match=r"declare the outputs by name in model\.outputs"):
        prepare_data(plain, raw=user_data({"x": x["tabular"], "y": y}))


def test_predictions_encode_with_the_saved_fields(tmp_path: Path) -> None:
    meta = {
        "ids": {"kind": "ids", "shape": [1], "vocab": 5},
        "f": {"kind": "features", "shape": [2], "mean": [1.0, 2.0], "std": [2.0, 4.0]},
    }
    out = encode_arrays({"ids": np.array([0, 4]), "f": np.array([[3.0, 6.0], [1.0, 2.0]])}, meta)
    assert isinstance(out, dict)
    assert out["ids"].tolist() == [[0], [4]]
    assert out["f"].tolist() == [[1.0, 1.0], [0.0, 0.0]]
    with pytest.raises(DataError) as err:
        encode_arrays({"ids": np.array([0, 5]), "f": np.zeros((2, 3))}, meta)
    text = str(err.value)
    assert "x.ids: input 'ids' holds ids the model has never seen (first: sample 1)" in text
    assert "x.f: input 'f' has the wrong shape (expected [2] per sample; found [3])" in text
    archive = tmp_path / "rows.npz"
    np.savez(archive, ids=np.array([9]), f=np.zeros((1, 2)))
    with pytest.raises(DataError, match=r"rows\.npz x\.ids: input 'ids' holds ids"):
        encode_arrays(archive, meta)
    one = {"input": meta["f"]}
    np.savez(archive, features=np.array([[3.0, 6.0]]))  # a one-input model: its one array
    assert encode_arrays(archive, one).tolist() == [[1.0, 1.0]]  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_run_on_named_arrays_predicts_its_own_test_metrics(tmp_path: Path) -> None:
    import nnspec
    from nnspec.run.predict import load_run

    x, y = _arrays()
    spec = _spec(tmp_path)
    result = nnspec.train(spec, data={"x": x, "y": y})
    assert result.monitor == "val_segment_accuracy"
    assert result.test_metrics["segment_accuracy"] > 0.8  # chance: 1/3
    assert result.test_metrics["spend_r2"] > 0.8
    _, _, te = _train_rows(spec, y["segment"])
    predictor = load_run(result.run_dir)
    rows = {name: a[te] for name, a in x.items()}
    predicted = predictor.predict(rows)
    accuracy = float(np.mean(predicted["segment"] == y["segment"][te]))  # type: ignore[index]
    assert accuracy == pytest.approx(result.test_metrics["segment_accuracy"], abs=1e-9)
    archive = tmp_path / "test_rows.npz"
    np.savez(archive, **rows)
    again = predictor.predict(archive)
    assert np.array_equal(again["segment"], predicted["segment"])  # type: ignore[index]
    out = tmp_path / "predictions.csv"
    done = subprocess.run(
        [sys.executable, "-m", "nnspec", "predict", str(result.run_dir), str(archive),
         "--out", str(out)], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with out.open() as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == ["segment", "segment_p_0", "segment_p_1", "segment_p_2", "spend"]
    assert [int(r["segment"]) for r in table] == predicted["segment"].tolist()  # type: ignore[index]
    spend = np.array([float(r["spend"]) for r in table])
    np.testing.assert_allclose(spend, predicted["spend"].reshape(-1), rtol=1e-5)  # type: ignore[index]
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from nnspec.run.export import export_run, load_exported

    onnx = load_exported(export_run(result.run_dir, "onnx", out=tmp_path / "onnx"))
    by_onnx = onnx.predict(rows)
    assert np.array_equal(by_onnx["segment"], predicted["segment"])  # type: ignore[index]
    np.testing.assert_allclose(by_onnx["spend"], predicted["spend"], rtol=1e-4)  # type: ignore[index]
    bad = tmp_path / "bad.npz"
    np.savez(bad, tabular=x["tabular"][:2], town=x["city"][:2])
    done = subprocess.run(
        [sys.executable, "-m", "nnspec", "predict", str(result.run_dir), str(bad),
         "--out", str(tmp_path / "p.csv")], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no array for the model's input 'city'" in done.stderr
    assert not (tmp_path / "p.csv").exists()


# ---- a Dataset of named items (nnspec.run.named_streams) ----


class NamedItems(torch.utils.data.Dataset[tuple[dict[str, Any], dict[str, Any]]]):
    """A user's map-style Dataset of ``({input: array}, {output: target})`` items that counts
    its reads (the arrays are the same as :func:`_arrays`)."""

    def __init__(self, x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> None:
        self.x, self.y, self.reads = x, y, 0

    def __len__(self) -> int:
        return len(self.y["segment"])

    def __getitem__(self, i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        self.reads += 1
        inputs = {"tabular": torch.from_numpy(self.x["tabular"][i]), "city": int(self.x["city"][i])}
        return inputs, {"segment": int(self.y["segment"][i]), "spend": float(self.y["spend"][i])}


def _losses(spec: ExperimentSpec, data: Any) -> list[float]:
    import nnspec
    from nnspec.run.callbacks import Callback, FitState

    class Losses(Callback):
        def __init__(self) -> None:
            self.seen: list[float] = []

        def on_step_end(self, state: FitState) -> None:
            self.seen.append(float(state.loss))

    losses = Losses()
    nnspec.train(spec, data=data, callbacks=[losses])
    return losses.seen


def _with(spec: ExperimentSpec, **data: Any) -> ExperimentSpec:
    return spec.model_copy(update={"data": spec.data.model_copy(update=data)})


def test_a_dataset_of_named_items_streams_with_the_arrays_statistics(tmp_path: Path) -> None:
    from nnspec.run.named import NamedSplit
    from nnspec.run.named_streams import NamedStreamSplit

    x, y = _arrays(600)
    spec = _with(_spec(tmp_path), in_memory="no")
    items = NamedItems(x, y)
    streamed = prepare_data(spec, raw=user_data(items))
    assert isinstance(streamed.train, NamedStreamSplit)
    held = prepare_data(_with(spec, in_memory="auto"), raw=user_data({"x": x, "y": y}))
    assert isinstance(held.train, NamedSplit)
    assert streamed.info.extra["vocab"] == held.info.extra["vocab"]
    a, b = streamed.info.extra["arrays"]["tabular"], held.info.extra["arrays"]["tabular"]
    np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a["std"], b["std"], rtol=1e-6)
    batch = streamed.train.head(5)
    for key, t in held.train.head(5).items():  # type: ignore[union-attr]
        torch.testing.assert_close(batch[key], t, rtol=1e-6, atol=1e-6)
    in_memory = prepare_data(_with(spec, in_memory="yes"), raw=user_data(items))
    assert isinstance(in_memory.train, NamedSplit)
    for key, t in in_memory.train.tensors.items():
        assert torch.equal(t, streamed.train.head(len(streamed.train))[key]), key
    # arrays with in_memory: no are read item by item the same way (memory-mapped ones stay)
    by_items = prepare_data(spec, raw=user_data({"x": x, "y": y}))
    assert isinstance(by_items.train, NamedStreamSplit)
    for key, t in streamed.train.head(7).items():
        assert torch.equal(by_items.train.head(7)[key], t), key


def test_a_dataset_item_with_wrong_names_is_refused_naming_them(tmp_path: Path) -> None:
    class Wrong(NamedItems):
        def __getitem__(self, i: int) -> tuple[dict[str, Any], dict[str, Any]]:
            inputs, targets = super().__getitem__(i)
            return {"tabular": inputs["tabular"], "town": inputs["city"]}, targets

    x, y = _arrays(50)
    with pytest.raises(DataError) as err:
        prepare_data(_spec(tmp_path), raw=user_data(Wrong(x, y)))
    text = str(err.value)
    assert "dataset item 0 data.x.city: no array for the model's input 'city'" in text
    assert "dataset item 0 data.x.town: 'town' is not an input of the model" in text


def test_bad_values_are_named_by_dataset_item(tmp_path: Path) -> None:
    x, y = _arrays(50)
    x["tabular"][31, 1] = np.nan
    x["city"][17] = -2
    with pytest.raises(DataError) as err:
        prepare_data(_spec(tmp_path), raw=user_data(NamedItems(x, y)))
    text = str(err.value)
    assert "input 'tabular' holds NaN or inf (1 dataset item, first: dataset item 31)" in text
    assert "input 'city' holds negative ids (1 dataset item, first: dataset item 17)" in text


@pytest.mark.slow
def test_named_items_train_alike_streamed_with_workers_and_in_memory(tmp_path: Path) -> None:
    x, y = _arrays(600)
    spec = _spec(tmp_path).model_copy(deep=True)
    spec = spec.model_copy(update={"train": spec.train.model_copy(update={"epochs": 3})})
    held = _losses(_with(spec, in_memory="yes"), NamedItems(x, y))
    streamed = _losses(_with(spec, in_memory="no", num_workers=2), NamedItems(x, y))
    assert len(held) == len(streamed) > 20
    np.testing.assert_allclose(streamed, held, rtol=1e-5)


# ---- the LR range test (optim.lr: auto) on named inputs and several outputs ----


@pytest.mark.slow
def test_lr_auto_picks_the_range_tests_rate_for_a_multi_output_model(tmp_path: Path) -> None:
    import nnspec
    from nnspec.check.lrfind import lr_find

    x, y = _arrays(600)
    spec = _spec(tmp_path)
    spec = spec.model_copy(update={
        "optim": spec.optim.model_copy(update={"lr": "auto"}),
        "train": spec.train.model_copy(update={"epochs": 3}),
    })  # fmt: skip
    found = lr_find(spec, raw=user_data({"x": x, "y": y}))
    assert all(np.isfinite(found.losses[:10]))
    # the weighted total of both outputs' losses falls before it diverges
    assert min(found.smoothed) < 0.9 * found.smoothed[0]
    assert 1e-5 < found.suggested_lr < 1.0
    result = nnspec.train(spec, data={"x": x, "y": y})
    from nnspec.io import load

    assert load(result.run_dir / "spec.yaml").optim.lr == float(f"{found.suggested_lr:.3g}")


def test_nnspec_check_still_names_what_it_cannot_run(tmp_path: Path) -> None:
    from nnspec.check.context import CheckContext
    from nnspec.errors import SpecError

    x, y = _arrays(100)
    with pytest.raises(SpecError, match="nnspec check runs models with one input tensor"):
        CheckContext(_spec(tmp_path), raw=user_data({"x": x, "y": y}))


class _Odd(NamedItems):
    """Named items, one of which (``at``) is changed by ``change``."""

    def __init__(self, x: Any, y: Any, at: int, change: Any) -> None:
        super().__init__(x, y)
        self.at, self.change = at, change

    def __getitem__(self, i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        inputs, targets = super().__getitem__(i)
        return self.change(inputs, targets) if i == self.at else (inputs, targets)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x, y: ({"tabular": x["tabular"]}, y),
         "dataset item 57 data.x.city: no array for the model's input 'city'"),
        (lambda x, y: (x, {"segment": y["segment"]}),
         "dataset item 57 data.y.spend: no array for the model's output 'spend'"),
        (lambda x, y: ({**x, "tabular": x["tabular"][:4]}, y),
         "dataset item 57 data.x.tabular: input 'tabular' has another shape than dataset item "
         "0's (expected [6]; found [4])"),
        (lambda x, y: ({**x, "city": [3, 4]}, y),
         "dataset item 57 data.x.city: input 'city' has another shape"),
        (lambda x, y: ({**x, "city": 2.7}, y),
         "data.x.city: input 'city' feeds an embedding: it takes integer ids"),
    ],
)  # fmt: skip
def test_a_later_item_that_differs_is_named_even_from_a_worker(
    tmp_path: Path, change: Any, message: str
) -> None:
    x, y = _arrays(100)
    spec = _with(_spec(tmp_path), num_workers=2)
    with pytest.raises(DataError) as err:
        prepare_data(spec, raw=user_data(_Odd(x, y, 57, change)))
    assert message in str(err.value)
    assert "Traceback" not in str(err.value)


def test_bad_values_are_counted_over_every_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nnspec.run import named_streams

    monkeypatch.setattr(named_streams, "SCAN_ROWS", 16)
    x, y = _arrays(80)
    x["tabular"][3, 0] = np.nan
    x["tabular"][40, 5] = np.inf
    with pytest.raises(DataError) as err:
        prepare_data(_spec(tmp_path), raw=user_data(NamedItems(x, y)))
    assert "holds NaN or inf (2 dataset items, first: dataset item 3)" in str(err.value)


def test_a_dataset_named_models_cannot_read_is_refused(tmp_path: Path) -> None:
    class Stream(torch.utils.data.IterableDataset[Any]):
        def __iter__(self) -> Any:
            return iter(())

    with pytest.raises(DataError, match="reads a map-style Dataset"):
        prepare_data(_spec(tmp_path), raw=user_data(Stream()))


def test_one_input_several_outputs_from_arrays(tmp_path: Path) -> None:
    x, y = _arrays(300)
    spec = ExperimentSpec.model_validate({
        "data": {"source": "user"},
        "model": {"input_shape": "auto",
                  "outputs": {"segment": {"task": "classification"},
                              "spend": {"task": "regression"}},
                  "layers": [{"kind": "linear", "name": "trunk", "out_features": 8},
                             {"kind": "linear", "name": "segment", "out_features": "auto",
                              "inputs": ["trunk"]},
                             {"kind": "linear", "name": "spend", "out_features": "auto",
                              "inputs": ["trunk"]}]},
    })  # fmt: skip
    bundle = prepare_data(spec, raw=user_data({"x": x["tabular"], "y": y}))
    assert bundle.info.input_shape == (6,) and bundle.info.inputs == {}
    meta = bundle.info.extra["arrays"]
    assert list(meta) == ["input"] and meta["input"]["kind"] == "features"
    encoded = encode_arrays(x["tabular"][:3], meta)
    assert isinstance(encoded, torch.Tensor)
    m = meta["input"]
    want = (torch.from_numpy(x["tabular"][:3]) - torch.tensor(m["mean"])) / torch.tensor(m["std"])
    torch.testing.assert_close(encoded, want)


def test_an_archive_that_is_not_named_arrays_is_refused(tmp_path: Path) -> None:
    meta = {"f": {"kind": "features", "shape": [2], "mean": None, "std": None}}
    npy = tmp_path / "one.npy"
    np.save(npy, np.zeros((2, 2)))
    with pytest.raises(DataError, match=r"an \.npy file, not an \.npz archive"):
        encode_arrays(npy, meta)
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, f=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="object arrays, which nnspec never loads"):
        encode_arrays(pickled, meta)
    with pytest.raises(DataError, match="no such file"):
        encode_arrays(tmp_path / "missing.npz", meta)


@pytest.mark.slow
def test_two_ranks_stream_named_items_as_one_process_does(tmp_path: Path) -> None:
    """DDP (gloo, CPU): each rank reads its own items of every global batch of a streamed
    Dataset of named items; losses per step and each output's test metrics equal one
    process's."""
    from ddp_worker import Record
    from test_ddp import ddp_runs

    from nnspec.run import fit

    spec = _with(_spec(tmp_path / "runs"), in_memory="no")
    spec = spec.model_copy(update={"train": spec.train.model_copy(update={
        "epochs": 2, "early_stopping": spec.train.early_stopping.model_copy(
            update={"enabled": False})})})  # fmt: skip
    record = Record()
    single = fit(spec, NamedItems(*_arrays(400)), callbacks=[record])
    (run,) = ddp_runs(tmp_path / "ddp", spec, "--named-items", "400")
    assert len(run["losses"]) == len(record.losses) == 2 * 5  # 280 training items, batch 64
    np.testing.assert_allclose(run["losses"], record.losses, rtol=1e-5)
    for k, v in single.test_metrics.items():
        assert run["test"][k] == pytest.approx(v, rel=1e-5), k
