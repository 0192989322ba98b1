"""A Parquet dataset with text columns and missing cells, streamed by row group: its columns
are fitted in one pass over the training rows, exactly as a table read whole is fitted, and its
rows are encoded, standardised, trained on and predicted from like a table in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from runhelp import tiny

from nnspec import load_run, train
from nnspec.errors import DataError
from nnspec.run.batches import INPUT, EpochBatches
from nnspec.run.column_fit import Summary, ValueCounts, fit_columns, summarise
from nnspec.run.data import prepare_data, user_data
from nnspec.run.iterables import IterSplit, holdout_parts
from nnspec.run.table_stream import parquet_pieces
from nnspec.run.tables import check_table

CPU = torch.device("cpu")
N = 1_000


def _table(n: int = N, seed: int = 0) -> Any:
    """Features of every kind, with missing cells; the label depends on x, city and member."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    cities = np.array([f"c{i}" for i in range(12)])[rng.integers(0, 12, n)]
    member = rng.integers(0, 2, n)
    label = ((x + (np.char.count(cities.astype(str), "1") > 0) + member) > 1).astype(np.int64)
    x_cells = [None if i % 17 == 0 else float(v) for i, v in enumerate(x)]
    return pa.table({
        "x": pa.array(x_cells, pa.float64()),
        "income": pa.array([None if i % 5 == 0 else int(v) for i, v in
                            enumerate(rng.integers(1000, 1050, n))], pa.int64()),
        "city": pa.array([None if i % 11 == 0 else str(c) for i, c in enumerate(cities)]),
        "member": pa.array(member, pa.int64()),  # 0/1: binary
        "vip": pa.array(rng.random(n) > 0.8),  # true/false
        "zip": pa.array(rng.integers(0, 30, n) * 1000, pa.int64()),  # declared categorical
        "grade": pa.array([str(v) for v in rng.integers(0, 9, n)]),  # numbers stored as text
        "post": pa.array([f"0{v}" for v in rng.integers(2100, 2200, n)]),  # "02134": a number
        "big": pa.array(2**53 + rng.integers(0, 1000, n), pa.int64()),  # rounds as float32
        "label": pa.array(label),
    })  # fmt: skip


def _write(folder: Path, table: Any, files: int = 3, row_group: int = 64) -> None:
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    step = -(-table.num_rows // files)
    for i in range(files):
        part = table.slice(i * step, step)
        pq.write_table(part, folder / f"part-{i}.parquet", row_group_size=row_group)


def _spec(tmp: Path, folder: Path, **data: Any) -> Any:
    return tiny(
        tmp,
        data={"source": f"parquet:{folder}", "target": "label", "in_memory": "no",
              "n_samples": None, "max_categories": 8, "columns": {"zip": "categorical"},
              "impute": {"columns": {"income": "median"}, "indicator": True}, **data},
        model={"input_shape": "auto", "layers": [{"linear": 16}, {"linear": "auto"}]},
        train={"epochs": 6},
    )  # fmt: skip


def _holdout_train(n: int, spec: Any) -> np.ndarray:
    split = spec.data.split
    return np.flatnonzero(holdout_parts(np.arange(n), split.val, split.test) == 0)


def test_streamed_columns_are_the_columns_of_the_table_read_whole(tmp_path: Path) -> None:
    table = _table()
    _write(tmp_path / "ds", table)
    spec = _spec(tmp_path, tmp_path / "ds")
    pieces = parquet_pieces(tmp_path / "ds", spec.data, ("label",))
    assert len(pieces) == 3 * 6  # 334 rows a file, row groups of 64
    streamed = pieces.fitted(spec.data, spec.data.split.val, spec.data.split.test).columns
    read = check_table(table, "ds")  # the table as read whole (and as predict reads rows)
    whole = fit_columns(read, _holdout_train(N, spec), spec.data, ("label",), "ds")
    assert streamed is not None
    assert [c.name for c in streamed.columns] == [
        "x", "income", "city", "member", "vip", "zip", "grade", "post", "big"
    ]  # fmt: skip
    for s, w in zip(streamed.columns, whole.columns, strict=True):
        fills = (s.fill, w.fill)
        assert s.__dict__ | {"fill": 0} == w.__dict__ | {"fill": 0}, s.name
        if isinstance(s.fill, float):
            assert s.fill == pytest.approx(w.fill, rel=1e-12), s.name
        else:
            assert fills[0] == fills[1], s.name
    kinds = {c.name: c.kind for c in streamed.columns}
    assert kinds == {"x": "numeric", "income": "numeric", "city": "categorical",
                     "member": "binary", "vip": "binary", "zip": "categorical",
                     "grade": "numeric", "post": "numeric", "big": "numeric"}  # fmt: skip
    city = streamed.columns[2]
    assert city.cardinality == 12 and len(city.categories) == 8 and city.missing > 0
    income = streamed.columns[1]
    train_income = table.column("income").take(_holdout_train(N, spec)).drop_null()
    assert income.fill == float(np.median(train_income.to_numpy()))  # exact, from the counts


def test_summaries_merge_to_the_summary_of_the_whole_column() -> None:
    import pyarrow as pa

    col = pa.array([0, 1, 1, 1, 1, 0, 0, 1], pa.int64())
    parts = [col.slice(0, 3), col.slice(3, 2), col.slice(5, 3)]
    merged: Summary = summarise(parts[0], text=False, numbers=True)
    for part in parts[1:]:
        merged.add(summarise(part, text=False, numbers=True))
    whole = summarise(col, text=False, numbers=True)
    assert merged == whole
    assert merged.counts == {"0": 3, "1": 5}
    assert merged.numbers is not None and merged.numbers.distinct().counts.tolist() == [3, 5]
    assert merged.numbers.median() == 1.0 and ValueCounts.of(np.array([4, 1, 3, 2])).median() == 2.5
    wide = pa.array([0, 1, 7], pa.int64())  # no longer 0/1: the text counts are dropped
    merged.add(summarise(wide, text=False, numbers=False))
    assert merged.counts is None and not merged.only01


def test_streamed_rows_are_encoded_and_standardised_as_in_memory(tmp_path: Path) -> None:
    table = _table()
    _write(tmp_path / "ds", table)
    spec = _spec(tmp_path, tmp_path / "ds")
    bundle = prepare_data(spec)
    assert isinstance(bundle.train, IterSplit)
    columns = bundle.train.data.pieces.columns
    assert bundle.info.extra["columns"] == columns.to_json()
    assert bundle.info.feature_names == columns.names
    encoded = columns.encode(check_table(table, "ds"))[_holdout_train(N, spec)]
    which = columns.standardised()
    want_mean = np.where(which, encoded.astype(np.float64).mean(0), 0.0)
    std = encoded.astype(np.float64).std(0)
    want_std = np.where(which & (std > 1e-8), std, 1.0)  # constant inputs ("big") keep 1
    torch.testing.assert_close(bundle.info.x_mean, torch.tensor(want_mean, dtype=torch.float32))
    torch.testing.assert_close(bundle.info.x_std, torch.tensor(want_std, dtype=torch.float32))
    sampler = EpochBatches(len(bundle.train), 10_000, seed=0, shuffle=False)
    (batch,) = list(bundle.train.batches(sampler, CPU))  # source order
    expected = (torch.from_numpy(encoded) - bundle.info.x_mean) / bundle.info.x_std
    torch.testing.assert_close(batch[INPUT], expected)


def test_unknown_columns_and_types_nnspec_cannot_encode_are_named_at_once(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = _table(200).append_column("tags", pa.array([[1, 2]] * 200))
    (tmp_path / "ds").mkdir()
    pq.write_table(table, tmp_path / "ds" / "part-0.parquet")
    spec = _spec(tmp_path, tmp_path / "ds", columns={"zip": "categorical", "zipp": "numeric"},
                 features=["x", "citty", "tags"])  # fmt: skip
    with pytest.raises(DataError) as caught:
        prepare_data(spec)  # from the schema, before any row is read
    text = str(caught.value)
    assert "data.columns.zipp" in text and "data.features.1" in text and "did you mean" in text
    assert "data.columns.tags" in text and "type nnspec cannot encode" in text


def test_bad_cells_are_named_by_row_group_and_row_all_at_once(tmp_path: Path) -> None:
    import pyarrow as pa

    table = _table(400)
    x = table.column("x").to_pylist()
    x[301] = float("nan")
    grade = table.column("grade").to_pylist()
    grade[250] = "seven"
    table = table.set_column(0, "x", pa.array(x)).set_column(
        table.column_names.index("grade"), "grade", pa.array(grade)
    )
    _write(tmp_path / "ds", table, files=1, row_group=100)
    spec = _spec(tmp_path, tmp_path / "ds", columns={"zip": "categorical", "grade": "numeric"})
    with pytest.raises(DataError) as caught:
        prepare_data(spec)
    text = str(caught.value)
    assert "part-0.parquet: row group 2, row 50: column 'grade': not a number" in text
    assert "'seven'" in text and "data.columns.grade: categorical" in text
    assert "part-0.parquet: row group 3, row 1: column 'x': NaN (1 cell)" in text


def test_rows_without_a_target_are_left_out_with_a_warning(tmp_path: Path) -> None:
    import pyarrow as pa

    table = _table(400)
    label = table.column("label").to_pylist()
    for i in (5, 150, 399):
        label[i] = None
    _write(tmp_path / "ds", table.set_column(table.num_columns - 1, "label", pa.array(label)))
    with pytest.warns(UserWarning, match="3 of 400 rows have no target value"):
        bundle = prepare_data(_spec(tmp_path, tmp_path / "ds"))
    assert bundle.info.class_names == ("0", "1")  # no third class for the empty cells
    n = sum(len(s) for s in (bundle.train, bundle.val, bundle.test))
    assert n == 397


@pytest.mark.slow
def test_a_streamed_table_with_text_and_missing_cells_trains_and_predicts(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = _table(3_000)
    _write(tmp_path / "ds", table)
    result = train(_spec(tmp_path, tmp_path / "ds"))
    assert result.test_metrics["accuracy"] > 0.85
    run = load_run(result.run_dir)
    # predict reads rows whole (read_table): it encodes them as the streamed run did
    labels = table.column("label").to_numpy()
    pq.write_table(table.drop_columns(["label"]), tmp_path / "all.parquet")
    accuracy = float((run.predict(str(tmp_path / "all.parquet")) == labels).mean())
    assert accuracy > 0.85
    rows = pa.table({"x": [0.5, None], "income": [None, 1010], "city": ["never-seen", None],
                     "member": [1, None], "vip": [None, True], "zip": [5000, 999_000],
                     "grade": ["3", None], "post": ["02150", "09999"],
                     "big": [2**53, None]})  # fmt: skip
    pacsv.write_csv(rows, tmp_path / "rows.csv")
    assert run.predict(str(tmp_path / "rows.csv")).shape == (2,)


def test_auto_decides_on_the_width_text_columns_can_encode_to(tmp_path: Path) -> None:
    """3,000 rows: 7 inputs are kept in memory; with 100,000 one-hot slots a text column could
    take 1.2 GB as float32, so ``in_memory: auto`` streams it."""
    import pyarrow.parquet as pq

    (tmp_path / "ds").mkdir()
    pq.write_table(_table(3_000).drop_columns(["zip"]), tmp_path / "ds" / "part-0.parquet")
    spec = _spec(tmp_path, tmp_path / "ds", in_memory="auto", columns={})
    assert not isinstance(prepare_data(spec).train, IterSplit)
    wide = _spec(tmp_path, tmp_path / "ds", in_memory="auto", columns={}, max_categories=100_000)
    assert isinstance(prepare_data(wide).train, IterSplit)


def _parquet(folder: Path, table: Any, row_group: int = 50) -> None:
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "part-0.parquet", row_group_size=row_group)


def _plain_spec(tmp: Path, folder: Path, in_memory: str, **data: Any) -> Any:
    return tiny(
        tmp,
        data={"source": f"parquet:{folder}", "target": "label", "in_memory": in_memory,
              "n_samples": None, **data},
        model={"input_shape": "auto", "layers": [{"linear": 8}, {"linear": "auto"}]},
    )  # fmt: skip


@pytest.mark.parametrize("in_memory", ["no", "yes"])
def test_a_true_false_target_with_empty_cells_in_some_row_groups(
    tmp_path: Path, in_memory: str
) -> None:
    import pyarrow as pa

    rng = np.random.default_rng(0)
    label = [None if i in (120, 121) else bool(v) for i, v in enumerate(rng.random(300) > 0.5)]
    _parquet(tmp_path / "ds", pa.table({"x": rng.normal(size=300), "label": label}))
    with pytest.warns(UserWarning, match="2 of 300 rows have no target value"):
        bundle = prepare_data(_plain_spec(tmp_path, tmp_path / "ds", in_memory))
    assert bundle.info.class_names == ("False", "True")


def test_a_target_of_numbers_stored_as_text_has_the_classes_of_a_table_read_whole(
    tmp_path: Path,
) -> None:
    import pyarrow as pa

    rng = np.random.default_rng(0)
    label = [str(v) for v in rng.integers(0, 2, 300)]
    _parquet(tmp_path / "ds", pa.table({"x": rng.normal(size=300), "label": label}))
    streamed = prepare_data(_plain_spec(tmp_path, tmp_path / "ds", "no"))
    whole = prepare_data(_plain_spec(tmp_path, tmp_path / "ds", "yes"))
    assert streamed.info.class_values == whole.info.class_values == (0, 1)


def test_an_empty_part_file_is_skipped(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    table = _table(300)
    _write(tmp_path / "ds", table, files=1)
    pq.write_table(table.slice(0, 0), tmp_path / "ds" / "part-9.parquet")  # Spark writes these
    bundle = prepare_data(_spec(tmp_path, tmp_path / "ds"))
    assert sum(len(s) for s in (bundle.train, bundle.val, bundle.test)) == 300


def test_a_float32_median_with_row_groups_of_no_training_row_is_the_whole_tables(
    tmp_path: Path,
) -> None:
    import pyarrow as pa

    rng = np.random.default_rng(3)
    x = pa.array(rng.normal(size=400).astype(np.float32), mask=rng.random(400) < 0.1)
    table = pa.table({"x": x, "label": pa.array(rng.integers(0, 2, 400))})
    _parquet(tmp_path / "ds", table, row_group=10)  # row groups 0, 10, ...: test rows only
    spec = _plain_spec(tmp_path, tmp_path / "ds", "no", impute={"numeric": "median"})
    pieces = parquet_pieces(tmp_path / "ds", spec.data, ("label",))
    streamed = pieces.fitted(spec.data, 0.2, 0.1).columns
    whole = fit_columns(check_table(table, "ds"), _holdout_train(400, spec), spec.data,
                        ("label",), "ds")  # fmt: skip
    assert streamed is not None and streamed.columns[0].fill == whole.columns[0].fill


def test_declared_categories_are_read_as_text_by_training_and_by_predict(tmp_path: Path) -> None:
    """Zip codes declared categorical keep their leading zero, training and predicting, even
    in a file where every cell looks like a number."""
    import pyarrow as pa

    from nnspec.run.columns import Columns, encode_rows

    rng = np.random.default_rng(0)
    post = [f"0{v}" for v in rng.integers(2100, 2110, 300)]
    post[7] = "N/A-code"  # 1 in 300: a text column of mostly numbers, declared text: no problem
    table = pa.table({"post": post, "x": rng.normal(size=300), "label": rng.integers(0, 2, 300)})
    _parquet(tmp_path / "ds", table)
    for in_memory in ("no", "yes"):
        spec = _plain_spec(tmp_path, tmp_path / "ds", in_memory, columns={"post": "categorical"})
        columns = Columns.from_json(prepare_data(spec).info.extra["columns"])
        post_column = columns.columns[0]
        assert post_column.text and all(c.startswith("0") for c in post_column.categories[:3])
        part = tmp_path / "rows.csv"
        part.write_text("post,x\n02104,0.5\n02105,1.0\n")  # every cell a number
        encoded = encode_rows(str(part), columns)
        slots = [f"post={c}" for c in ("02104", "02105")]
        assert [encoded[i, columns.names.index(s)] for i, s in enumerate(slots)] == [1.0, 1.0]


@pytest.mark.parametrize("in_memory", ["no", "yes"])
def test_pandas_text_and_category_columns_train(tmp_path: Path, in_memory: str) -> None:
    """pandas 3 writes text as large_string and categories as dictionaries."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"color": rng.choice(["red", "green", "blue"], 300),
                          "size": pd.Categorical(rng.choice(["S", "M", "L"], 300)),
                          "x": rng.normal(size=300), "label": rng.integers(0, 2, 300)})  # fmt: skip
    (tmp_path / "ds").mkdir()
    frame.to_parquet(tmp_path / "ds" / "part-0.parquet")
    bundle = prepare_data(_plain_spec(tmp_path, tmp_path / "ds", in_memory))
    kinds = {c["name"]: c["kind"] for c in bundle.info.extra["columns"]}
    assert kinds == {"color": "categorical", "size": "categorical", "x": "numeric"}
    spec = _plain_spec(tmp_path, tmp_path / "mem", "yes", source="user")
    assert prepare_data(spec, raw=user_data(frame)).info.input_shape == (
        len(bundle.info.feature_names),
    )


@pytest.mark.parametrize("in_memory", ["no", "yes"])
def test_cell_problems_read_whole_and_streamed_alike(tmp_path: Path, in_memory: str) -> None:
    import pyarrow as pa

    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    x[40] = np.nan
    table = pa.table({"x": x, "b": rng.random(300) > 0.5, "tags": pa.array([[1]] * 300),
                      "label": rng.integers(0, 2, 300)})  # fmt: skip
    _parquet(tmp_path / "ds", table)
    spec = _plain_spec(tmp_path, tmp_path / "ds", in_memory, columns={"b": "numeric"},
                       features=["x", "b"])  # fmt: skip
    with pytest.raises(DataError) as caught:
        prepare_data(spec)
    text = str(caught.value)
    assert "column 'x': NaN (1 cell)" in text and "column 'b' is declared numeric" in text
    _parquet(tmp_path / "lists", table.set_column(0, "x", pa.array(rng.normal(size=300))))
    listed = _plain_spec(tmp_path, tmp_path / "lists", in_memory, features=["x", "tags"])
    with pytest.raises(DataError, match="column 'tags' has a type nnspec cannot encode"):
        prepare_data(listed)


@pytest.mark.slow
def test_nnspec_train_streams_a_parquet_folder_and_names_bad_cells(tmp_path: Path) -> None:
    import subprocess
    import sys

    import pyarrow as pa

    from nnspec.io import dump

    _write(tmp_path / "ds", _table(600))
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(dump(_spec(tmp_path, tmp_path / "ds")))
    done = subprocess.run([sys.executable, "-m", "nnspec", "train", str(spec_file)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = (tmp_path / "runs" / "tiny").iterdir()
    assert (run / "model.pt").exists()
    bad = _table(600)
    x = bad.column("x").to_pylist()
    x[500] = float("inf")
    _write(tmp_path / "bad", bad.set_column(0, "x", pa.array(x)))
    spec_file.write_text(dump(_spec(tmp_path, tmp_path / "bad")))
    done = subprocess.run([sys.executable, "-m", "nnspec", "train", str(spec_file)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "part-2.parquet: row group 1, row 36: column 'x': an infinite value" in done.stderr
