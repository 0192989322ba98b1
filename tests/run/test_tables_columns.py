"""Typed table columns: inference and statistics on the training split only (DATA-5), one-hot
with unknown and missing slots, imputation, `auto` sizes, and predict on unseen rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from nnspec.errors import DataError, SpecError
from nnspec.run.column_fit import fit_columns
from nnspec.run.columns import MISSING, UNKNOWN, Columns
from nnspec.spec.data import SOURCE_NAMES, DataSpec
from nnspec.spec.experiment import ExperimentSpec


def _fit(table: pa.Table, train: list[int] | None = None, **data: object) -> Columns:
    spec = DataSpec(source="csv:t.csv", target="y", **data)  # type: ignore[arg-type]
    rows = np.arange(table.num_rows) if train is None else np.array(train)
    return fit_columns(table, rows, spec, ("y",), "t.csv")


TABLE = pa.table(
    {
        "num": pa.array([1.0, 2.0, None, 4.0, 100.0], pa.float32()),
        "flag": pa.array([0.0, 1.0, 1.0, 0.0, 1.0], pa.float32()),
        "color": ["red", "blue", "red", None, "green"],
        "member": ["yes", "no", None, "no", "yes"],
        "y": ["a", "b", "a", "b", "a"],
    }
)


def test_types_are_inferred() -> None:
    kinds = {c.name: c.kind for c in _fit(TABLE).columns}
    assert kinds == {"num": "numeric", "flag": "binary", "color": "categorical",
                     "member": "binary"}  # fmt: skip


def test_statistics_come_from_the_training_rows_only() -> None:
    # DATA-5: row 4 (100.0, 'green') is not a training row: neither the mean nor the vocabulary
    # may see it.
    cols = _fit(TABLE, train=[0, 1, 2, 3], columns={"color": "categorical"})
    num = next(c for c in cols.columns if c.name == "num")
    assert num.fill == pytest.approx((1 + 2 + 4) / 3)
    color = next(c for c in cols.columns if c.name == "color")
    assert color.categories == ("red", "blue") and color.missing == 1
    x = cols.encode(TABLE)
    names = cols.names
    green = x[4, names.index("color=<unknown>")]
    assert green == 1.0  # a value the training rows never had goes to the unknown slot
    assert x[3, names.index(f"color={MISSING}")] == 1.0
    assert x[2, names.index("num")] == pytest.approx(7 / 3)


def test_one_hot_keeps_the_most_frequent_categories() -> None:
    t = pa.table({"c": ["a"] * 5 + ["b"] * 3 + ["c", "d"], "y": ["p", "q"] * 5})
    cols = _fit(t, max_categories=2)
    (c,) = cols.columns
    assert c.categories == ("a", "b") and c.cardinality == 4
    assert cols.names == ("c=a", "c=b", f"c={UNKNOWN}")
    x = cols.encode(t)
    assert x.sum(axis=1).tolist() == [1.0] * 10  # exactly one slot per row
    assert x[:, 2].tolist() == [0.0] * 8 + [1.0, 1.0]


@pytest.mark.parametrize(
    ("impute", "fill"), [("mean", 2.5), ("median", 2.0), ("most_frequent", 1.0), ("constant", -1.0)]
)
def test_numeric_imputation(impute: str, fill: float) -> None:
    n = pa.array([1.0, 3.0, None, 5.0, 1.0], pa.float32())
    t = pa.table({"n": n, "y": ["a", "b", "a", "b", "a"]})
    cols = _fit(t, impute={"numeric": impute, "fill_value": -1.0, "indicator": True})
    assert cols.names == ("n", "n:missing")
    x = cols.encode(t)
    assert x[2, 0] == pytest.approx(fill) and x[:, 1].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert cols.standardised().tolist() == [True, False]


def test_binary_columns_are_0_1_and_impute_their_mode() -> None:
    t = pa.table({"m": ["yes", "no", "yes", None, "maybe"], "y": ["a", "b", "a", "b", "a"]})
    cols = _fit(t, train=[0, 1, 2, 3], impute={"categorical": "most_frequent"})
    (m,) = cols.columns
    assert m.kind == "binary" and m.categories == ("no", "yes") and m.fill == 1.0
    # no -> 0, yes -> 1, missing and a value training never had -> the mode (yes)
    assert cols.encode(t)[:, 0].tolist() == [1.0, 0.0, 1.0, 1.0, 1.0]


def test_most_frequent_fills_a_categorical_with_its_mode() -> None:
    cols = _fit(TABLE, impute={"columns": {"color": "most_frequent"}})
    color = next(c for c in cols.columns if c.name == "color")
    x = cols.encode(TABLE)
    assert MISSING not in "".join(cols.names)
    assert color.fill == "red" and x[3, cols.names.index("color=red")] == 1.0


def test_column_problems_are_reported_together() -> None:
    t = pa.table({"a": ["x", "y", "z"], "empty": pa.nulls(3, pa.float32()), "y": ["p", "q", "p"]})
    spec = DataSpec(
        source="csv:t.csv",
        target="y",
        columns={"a": "binary"},
        impute={"columns": {"a": "mean"}},  # type: ignore[arg-type]
    )
    with pytest.raises(DataError) as err:
        fit_columns(t, np.arange(3), spec, ("y",), "t.csv")
    text = str(err.value)
    assert "column 'a' is declared binary" in text
    assert "column 'empty' has no value in the training split" in text
    assert len(err.value.problems) == 2


def test_unknown_column_names_get_a_suggestion(tmp_path: Path) -> None:
    from nnspec.run.file_sources import load_table

    f = tmp_path / "t.csv"
    f.write_text("color,size,y\nred,1,a\nblue,2,b\n")
    spec = DataSpec(source="csv:t.csv", target="yy", columns={"colour": "categorical"})
    with pytest.raises(DataError) as err:
        load_table(f, "csv", spec)
    text = str(err.value)
    assert "t.csv has no column 'colour'; did you mean 'color'?" in text
    assert "t.csv has no column 'yy'" in text


def test_rows_without_a_target_are_dropped_with_a_warning(tmp_path: Path) -> None:
    from nnspec.run.file_sources import load_table

    f = tmp_path / "t.csv"
    f.write_text("x,y\n1,a\n2,\n3,b\n4,NA\n")
    with pytest.warns(UserWarning, match="2 of 4 rows have no target value"):
        data = load_table(f, "csv", DataSpec(source="csv:t.csv", target="y"))
    assert data.y.tolist() == ["a", "b"] and data.dropped == 2


def test_integers_beyond_float64_precision_read_as_rounded_floats(tmp_path: Path) -> None:
    from nnspec.run.file_sources import load_table

    f = tmp_path / "t.csv"
    f.write_text("x,y\n9007199254740993,1\n2,0\n")  # 2**53 + 1: no float64 holds it exactly
    data = load_table(f, "csv", DataSpec(source="csv:t.csv", target="y"))
    assert data.table.column("x").to_pylist() == [float(2**53), 2.0]


def test_a_table_without_any_target_value_is_a_data_error(tmp_path: Path) -> None:
    from nnspec.run.file_sources import load_table

    f = tmp_path / "t.csv"
    f.write_text("x,y\n1,\n2,NA\n")
    with pytest.raises(DataError, match="no row has a target value") as err:
        load_table(f, "csv", DataSpec(source="csv:t.csv", target="y"))
    assert "2 rows, every target cell empty" in str(err.value)


def test_columns_round_trip_through_json() -> None:
    cols = _fit(TABLE)
    again = Columns.from_json(json.loads(json.dumps(cols.to_json())))
    assert again == cols
    assert np.array_equal(again.encode(TABLE), cols.encode(TABLE))


def test_source_names_match_the_loader_registry() -> None:
    from nnspec.run.sources import SKLEARN_SETS, SOURCES, SYNTHETIC

    assert set(SOURCE_NAMES) == set(SOURCES)
    assert SOURCE_NAMES["sklearn"] == SKLEARN_SETS
    assert set(SOURCE_NAMES["synthetic"] or ()) == set(SYNTHETIC)


def test_validate_refuses_unknown_source_names_without_data() -> None:
    from nnspec.io import validate

    with pytest.raises(SpecError, match="unknown sklearn source 'irsi'; did you mean 'iris'"):
        validate({"data": {"source": "sklearn:irsi"}})
    with pytest.raises(SpecError, match=r"unknown data source 'xls:a\.xls'"):
        validate({"data": {"source": "xls:a.xls"}})


def test_auto_is_only_for_the_input_and_the_head() -> None:
    from nnspec.io import validate

    model = {"input_shape": "auto", "layers": [{"linear": "auto"}, {"linear": 2}]}
    with pytest.raises(SpecError, match=r"layers.0.out_features: `auto` is allowed for the last"):
        validate({"model": model})


def test_build_model_refuses_auto_sizes() -> None:
    from nnspec.compile import build_model

    layers = [{"linear": 4}, {"linear": "auto"}]
    spec = ExperimentSpec(model={"input_shape": "auto", "layers": layers})
    with pytest.raises(SpecError) as err:
        build_model(spec.model)
    assert [p.path for p in err.value.problems] == [
        ("model", "input_shape"),
        ("model", "layers", 1, "out_features"),
    ]


# label = (colour is red) XOR (member is no); num is noise; NA numbers and empty colours missing.
MIXED = "num,color,member,label\n" + "".join(
    f"{(i * 7919) % 97 / 10 if i % 11 else 'NA'},"
    f"{['red', 'blue', 'green'][i % 3] if i % 13 else ''},"
    f"{'yes' if (i // 3) % 2 else 'no'},{'hi' if (i % 3 == 0) != ((i // 3) % 2 == 0) else 'lo'}\n"
    for i in range(240)
)


def test_a_table_trains_from_names_only_and_predicts_unseen_rows(tmp_path: Path) -> None:
    import nnspec
    from nnspec.run.predict import load_run

    (tmp_path / "mixed.csv").write_text(MIXED)
    spec = {
        "task": "classification",
        "data": {"source": "csv:mixed.csv", "target": "label"},
        "model": {"input_shape": "auto", "layers": [{"linear": 16}, {"linear": "auto"}]},
        "optim": {"kind": "adamw", "lr": 0.01},
        "train": {"epochs": 40, "output_dir": str(tmp_path / "runs"), "progress": "none"},
    }
    result = nnspec.train(spec, base_dir=tmp_path)
    assert result.test_metrics["accuracy"] >= 0.9  # colour x member decides the label
    meta = json.loads((Path(result.run_dir) / "preprocess.json").read_text())
    assert meta["input_shape"] == [1 + 5 + 1]  # num, red/blue/green/unknown/missing, member
    assert [c["kind"] for c in meta["extra"]["columns"]] == ["numeric", "categorical", "binary"]
    predictor = load_run(result.run_dir)
    rows = {"num": [None, 3.0], "color": ["purple", None], "member": ["yes", "no"]}
    assert predictor.predict(rows).tolist() in (["hi", "hi"], ["hi", "lo"], ["lo", "hi"],
                                                ["lo", "lo"])  # fmt: skip
    (tmp_path / "new.csv").write_text("color,num,member\nred,1,yes\nblue,,yes\n")
    assert predictor.predict(tmp_path / "new.csv").tolist() == ["hi", "lo"]


def test_a_pyarrow_table_passed_to_train_is_typed_like_a_file(tmp_path: Path) -> None:
    import nnspec
    from nnspec.run.data import prepare_data, user_data

    rows = [line.split(",") for line in MIXED.strip().splitlines()]
    cells = {name: [r[i] if r[i] not in ("", "NA") else None for r in rows[1:]]
             for i, name in enumerate(rows[0])}  # fmt: skip
    table = pa.table(cells)
    spec = ExperimentSpec.model_validate({
        "task": "classification",
        "data": {"source": "user", "target": "label"},
        "model": {"input_shape": "auto", "layers": [{"linear": 8}, {"linear": "auto"}]},
        "train": {"epochs": 1, "output_dir": str(tmp_path), "progress": "none"},
    })  # fmt: skip
    bundle = prepare_data(spec, raw=user_data(table))
    assert bundle.info.input_shape == (7,)  # the same columns as from the CSV
    # a text column of numbers is read as numbers, as from a file
    assert [c["kind"] for c in bundle.info.extra["columns"]] == ["numeric", "categorical", "binary"]
    bad = table.set_column(0, "num", pa.array([float("inf")] + [1.0] * (len(table) - 1)))
    with pytest.raises(DataError, match=r"data:1: column 'num': an infinite value"):
        prepare_data(spec, raw=user_data(bad))
    result = nnspec.train(spec, data=table)
    assert nnspec.load_run(result.run_dir).predict(table.slice(0, 2)).shape == (2,)
