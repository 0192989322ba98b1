"""Data sources, splits (DATA-7/8), standardisation (DATA-5) and CSV errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from runhelp import tiny

from nnspec.errors import DataError
from nnspec.run.batches import INPUT, TARGET, EpochBatches
from nnspec.run.data import epoch_order, prepare_data, prepared, user_data
from nnspec.run.sources import SKLEARN_SETS, SYNTHETIC, RawData, user_dataset
from nnspec.run.streams import ArrayRows, Prep
from nnspec.spec.data import DataSpec


def test_default_split_is_70_20_10_disjoint_and_seeded(tmp_path: Path) -> None:
    spec = tiny(tmp_path, data={"n_samples": 1000})
    a = prepare_data(spec)
    assert (len(a.train), len(a.val), len(a.test)) == (700, 200, 100)
    b = prepare_data(spec)
    assert torch.equal(a.test.x, b.test.x)
    rows = torch.cat([a.train.x, a.val.x, a.test.x]).reshape(1000, -1)
    assert len(torch.unique(rows, dim=0)) == 1000  # disjoint, union = everything


def test_split_is_stratified_for_classification(tmp_path: Path) -> None:
    bundle = prepare_data(tiny(tmp_path, data={"n_samples": 1000}))
    full = torch.cat([bundle.train.y, bundle.val.y, bundle.test.y])
    for part in (bundle.train, bundle.val, bundle.test):
        share = torch.bincount(part.y, minlength=3) / len(part)
        want = torch.bincount(full, minlength=3) / len(full)
        assert torch.allclose(share, want, atol=1.5 / len(part) * 3)


def test_different_seeds_give_different_splits(tmp_path: Path) -> None:
    a = prepare_data(tiny(tmp_path))
    b = prepare_data(tiny(tmp_path, seed=1))
    assert not torch.equal(a.test.y, b.test.y) or not torch.equal(a.test.x, b.test.x)


def test_standardisation_uses_training_statistics_only(tmp_path: Path) -> None:
    # DATA-5: scaling the val/test rows' raw values must not move the fitted statistics.
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(200, 4)).astype(np.float32)
    y = rng.integers(0, 2, 200)
    spec = tiny(tmp_path, model={"input_shape": [4], "layers": [{"linear": 4}, {"linear": 2}]})
    a = prepare_data(spec, raw=RawData(x, y))
    x2 = x.copy()
    idx = np.setdiff1d(np.arange(200), _train_rows(a, x))
    x2[idx] *= 100
    b = prepare_data(spec, raw=RawData(x2, y))
    assert torch.allclose(a.info.x_mean, b.info.x_mean) and torch.allclose(
        a.info.x_std, b.info.x_std
    )
    assert torch.allclose(a.train.x.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(a.train.x.std(0, unbiased=False), torch.ones(4), atol=1e-4)


def test_splits_are_standardised_without_touching_the_users_array(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 3.0, size=(200, 4)).astype(np.float32)
    given = x.copy()
    spec = tiny(tmp_path, model={"input_shape": [4], "layers": [{"linear": 4}, {"linear": 2}]})
    bundle = prepare_data(spec, raw=RawData(x, rng.integers(0, 2, 200)))
    assert np.array_equal(x, given)
    for split in (bundle.train, bundle.val, bundle.test):
        raw = split.x * bundle.info.x_std + bundle.info.x_mean
        assert torch.allclose(raw, torch.from_numpy(x[_train_rows(bundle, x, split)]), atol=1e-4)


def test_a_split_that_is_a_slice_of_the_array_is_standardised_into_a_new_tensor() -> None:
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    given = x.copy()
    prep = Prep(torch.full((4,), 2.0), torch.full((4,), 4.0), (4,))
    sliced = prepared(ArrayRows(x), np.arange(2, 6), prep)  # consecutive rows: a view
    gathered = prepared(ArrayRows(x), np.array([7, 1, 3]), prep)  # a copy, scaled in place
    assert np.array_equal(x, given)
    assert torch.equal(sliced, (torch.from_numpy(given[2:6]) - 2) / 4)
    assert torch.equal(gathered, (torch.from_numpy(given[[7, 1, 3]]) - 2) / 4)


def _train_rows(bundle, x: np.ndarray, split=None) -> np.ndarray:
    split = split if split is not None else bundle.train
    raw = split.x.numpy() * bundle.info.x_std.numpy() + bundle.info.x_mean.numpy()
    return np.array([int(np.abs(x - r).sum(1).argmin()) for r in raw])


@pytest.mark.parametrize("name", SKLEARN_SETS)
def test_every_bundled_sklearn_set_loads(tmp_path: Path, name: str) -> None:
    from sklearn import datasets

    n_features = getattr(datasets, f"load_{name}")().data.shape[1]
    task = "regression" if name == "diabetes" else "classification"
    spec = tiny(
        tmp_path,
        task=task,
        data={"source": f"sklearn:{name}"},
        model={
            "input_shape": [n_features],
            "layers": [{"linear": 4}, {"linear": 1 if task == "regression" else 3}],
        },
    )
    bundle = prepare_data(spec)
    assert bundle.train.x.shape[1:] == (n_features,)


@pytest.mark.parametrize("kind", sorted(SYNTHETIC))
def test_synthetic_generators_are_seeded(tmp_path: Path, kind: str) -> None:
    from nnspec.run.sources import load_source

    spec = tiny(tmp_path, data={"source": f"synthetic:{kind}", "n_samples": 50})
    data = spec.data.model_copy(update={"options": {}})  # each generator's defaults
    a, b = load_source(data, 3), load_source(data, 3)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


def test_images_are_reshaped_to_input_shape(tmp_path: Path) -> None:
    spec = tiny(
        tmp_path,
        data={"source": "sklearn:digits"},
        model={"input_shape": [1, 8, 8], "layers": ["flatten", {"linear": 10}]},
    )
    assert prepare_data(spec).train.x.shape[1:] == (1, 8, 8)


def test_input_shape_that_does_not_fit_the_data(tmp_path: Path) -> None:
    spec = tiny(tmp_path, model={"input_shape": [7], "layers": [{"linear": 3}]})
    with pytest.raises(DataError, match="input_shape does not fit") as e:
        prepare_data(spec)
    p = e.value.problems[0]
    assert p.path == ("model", "input_shape")
    assert p.expected == "[8] (the per-sample shape of the data)"
    assert p.fix is not None and p.fix.startswith("set model.input_shape: [8]")


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def _csv_spec(tmp_path: Path, **data: object):
    return tiny(
        tmp_path,
        data={"source": "csv:data.csv", "target": "label", "options": {}, **data},
        model={"input_shape": [2], "layers": [{"linear": 4}, {"linear": 2}]},
    )


def test_csv_relative_path_resolves_against_the_spec_folder(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i % 3},{'ab'[i % 2]}" for i in range(40))
    _csv(tmp_path, "a,b,label\n" + rows + "\n")
    bundle = prepare_data(_csv_spec(tmp_path), base=tmp_path)
    assert bundle.info.class_names == ("a", "b")
    assert bundle.info.feature_names == ("a", "b")


def test_csv_missing_target_column_names_it(tmp_path: Path) -> None:
    _csv(tmp_path, "a,b,lable\n1,2,x\n")
    with pytest.raises(DataError) as e:
        prepare_data(_csv_spec(tmp_path), base=tmp_path)
    p = e.value.problems[0]
    assert p.path == ("data", "target")
    assert "no column 'label'" in p.message and "did you mean 'lable'" in p.message


def test_csv_non_numeric_cell_names_row_and_column(tmp_path: Path) -> None:
    # a text column is a category column unless it is declared numeric
    _csv(tmp_path, "a,b,label\n1,2,x\n3,oops,y\n")
    spec = _csv_spec(tmp_path)
    data = spec.data.model_copy(update={"columns": {"b": "numeric"}})
    spec = spec.model_copy(update={"data": data})
    with pytest.raises(DataError) as e:
        prepare_data(spec, base=tmp_path)
    p = e.value.problems[0]
    assert p.line == 3 and "column 'b': not a number" in p.message and p.found == "'oops'"


def test_csv_non_numeric_regression_target_names_row_and_column(tmp_path: Path) -> None:
    _csv(tmp_path, "a,b,label\n1,2,0.5\n3,4,abc\n")
    spec = _csv_spec(tmp_path, split={"train": 0.5, "val": 0.25, "test": 0.25})
    spec = spec.model_copy(update={"task": "regression"})
    with pytest.raises(DataError) as e:
        prepare_data(spec, base=tmp_path)
    assert "row 3, column 'label'" in e.value.problems[0].message


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        prepare_data(_csv_spec(tmp_path), base=tmp_path)


def test_user_arrays_and_dataset() -> None:
    x, y = np.zeros((10, 3)), np.arange(10) % 2
    assert user_data((x, y)).x.shape == (10, 3)
    ds = torch.utils.data.TensorDataset(torch.zeros(10, 3), torch.arange(10) % 2)
    assert user_dataset(user_data(ds).dataset, DataSpec()).y.shape == (
        10,
    )  # read as it is, not copied
    with pytest.raises(DataError):
        user_data("nope")


def test_epoch_order_is_a_pure_function_of_seed_and_epoch() -> None:
    torch.manual_seed(123)
    a = epoch_order(0, 5, 100)
    torch.manual_seed(999)  # process RNG state must not matter (exact resume)
    assert torch.equal(a, epoch_order(0, 5, 100))
    assert not torch.equal(a, epoch_order(0, 6, 100))
    assert sorted(a.tolist()) == list(range(100))


def test_batches_are_slices_and_a_single_leftover_is_dropped(tmp_path: Path) -> None:
    bundle = prepare_data(tiny(tmp_path, data={"n_samples": 300}))
    cpu = torch.device("cpu")
    sampler = EpochBatches(len(bundle.train), 32, seed=0, shuffle=True)
    sampler.set_epoch(1)
    batches = list(bundle.train.batches(sampler, cpu))
    assert set(batches[0]) == {INPUT, TARGET}  # a batch is a mapping of named tensors
    sizes = [len(b[INPUT]) for b in batches]
    assert sum(sizes) == 210 and sizes[-1] == 210 % 32
    order = epoch_order(0, 1, 210)
    assert torch.equal(batches[0][INPUT], bundle.train.x[order[:32]])
    split = bundle.train.__class__(bundle.train.x[:65], bundle.train.y[:65])
    plain = EpochBatches(65, 32, seed=0, shuffle=False)
    assert [len(b[TARGET]) for b in split.batches(plain, cpu)] == [32, 32]  # 1 left: dropped
