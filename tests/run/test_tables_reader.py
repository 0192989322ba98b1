"""The table reader (pyarrow): every problem of a file at once, float32 numbers, no echo of a
file that does not parse; .npz/.npy checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnspec.errors import DataError
from nnspec.run.arrays import load_npy, load_npz
from nnspec.run.tables import MAX_FIELD_CHARS, read_table

FIVE_PROBLEMS = (
    "a,b,a,c,d\n"  # duplicate header 'a'
    "1,x,inf,1,1\n"  # inf cell (column a.2, row 2)
    "2,y,3,1e40,2\n"  # float32 overflow (column c, row 3)
    "3,z,4,5\n"  # ragged row 4
    + "".join(f"{i},q,1,2,{i}\n" for i in range(30))
    + "5,w,1,2,oops\n"  # a bad cell in a column of numbers (column d, row 35)
)


def _problems(err: pytest.ExceptionInfo[DataError]) -> list[str]:
    return [str(p) for p in err.value.problems]


def test_five_problems_are_reported_in_one_error(tmp_path: Path) -> None:
    f = tmp_path / "five.csv"
    f.write_text(FIVE_PROBLEMS)
    with pytest.raises(DataError) as err:
        read_table(f, "csv")
    found = _problems(err)
    assert len(found) == 5, err.value
    assert "five.csv: 5 problems in the data file" in str(err.value)
    assert any("five.csv:1 " in p and "duplicate header names: 'a' (2 times)" in p for p in found)
    assert any("five.csv:4 " in p and "1 row with the wrong number of cells" in p for p in found)
    assert any("five.csv:2 " in p and "column 'a.2': an infinite value" in p for p in found)
    assert any("five.csv:3 " in p and "column 'c': a number beyond float32" in p for p in found)
    # the ragged row 4 was left out, yet the bad cell is numbered by its row in the file
    assert any("five.csv:35 " in p and "column 'd': not a number" in p and "'oops'" in p
               for p in found)  # fmt: skip


def test_training_on_a_bad_file_exits_2_and_writes_no_run(tmp_path: Path) -> None:
    import nnspec

    (tmp_path / "five.csv").write_text(FIVE_PROBLEMS)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "task: classification\n"
        "data: {source: csv:five.csv, target: b}\n"
        "model: {input_shape: auto, layers: [{linear: 8}, {linear: auto}]}\n"
        f"train: {{epochs: 1, output_dir: {tmp_path / 'runs'}}}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "nnspec.cli.main", "train", str(spec)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "5 problems in the data file" in proc.stderr
    assert not list((tmp_path / "runs").rglob("spec.yaml"))  # no run directory was started
    with pytest.raises(DataError, match="5 problems in the data file"):
        nnspec.train(spec, overrides=[f"train.output_dir={tmp_path / 'api'}"])
    assert not (tmp_path / "api").exists()


def test_numbers_are_float32_and_na_cells_are_missing(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("\ufeffx,y,z\n1,a,\nNA,b,2.5\n3, c ,N/A\n")  # with a UTF-8 BOM
    t = read_table(f, "csv")
    assert t.column_names == ["x", "y", "z"]  # the BOM is not part of the first name
    assert str(t.schema.field("x").type) == "float"
    assert t.column("x").to_pylist() == [1.0, None, 3.0]
    assert t.column("z").null_count == 2
    assert t.column("y").to_pylist() == ["a", "b", " c "]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("  \n\n", "the file is empty"),
        ("a,b\n", "the file has a header but no data rows"),
        ("a,,c\n1,2,3\n", "header column 2 has no name"),
    ],
)
def test_empty_and_header_only_files(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "t.csv"
    f.write_text(text)
    with pytest.raises(DataError, match=message):
        read_table(f, "csv")


def test_a_too_long_field_is_a_problem(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("a,b\n1,x\n2," + "y" * (MAX_FIELD_CHARS + 1) + "\n")
    with pytest.raises(DataError, match=r"t.csv:3 data.source: column 'b': a field of 65537 bytes"):
        read_table(f, "csv")


def test_another_encoding_is_named_without_echo(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_bytes("name,n\nZürich,1\nGenève,2\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"t.csv:2 .*column 'name': text that is not UTF-8"):
        read_table(f, "csv")
    f.write_bytes("secret,n\nZ,1\n".encode("utf-16"))
    with pytest.raises(DataError, match="NUL bytes: UTF-16 text or a binary file") as err:
        read_table(f, "csv")
    assert "secret" not in str(err.value)


def test_a_file_of_another_format_is_never_echoed(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"secret_column": ["secret_value"] * 3}), tmp_path / "t.parquet")
    (tmp_path / "t.csv").write_bytes((tmp_path / "t.parquet").read_bytes())
    with pytest.raises(DataError) as err:
        read_table(tmp_path / "t.csv", "csv")
    (tmp_path / "u.parquet").write_text("secret_column\nsecret_value\n")
    with pytest.raises(DataError, match="not a valid Parquet file") as err2:
        read_table(tmp_path / "u.parquet", "parquet")
    for e in (err, err2):
        assert "secret" not in str(e.value)


def test_parquet_and_feather_read_like_csv(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    table = pa.table({"x": [1, 2, None], "c": ["a", None, "b"], "f": [0.5, np.inf, 1.0]})
    pq.write_table(table.drop_columns(["f"]), tmp_path / "t.parquet")
    feather.write_feather(table, tmp_path / "t.feather")
    t = read_table(tmp_path / "t.parquet", "parquet")
    assert str(t.schema.field("x").type) == "float"
    assert t.column("c").to_pylist() == ["a", None, "b"]
    with pytest.raises(DataError, match=r"t.feather:3 data.source: column 'f': an infinite value"):
        read_table(tmp_path / "t.feather", "feather")


def test_a_column_declared_numeric_names_its_first_text_cell(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("a,b\nx,1\ny,2\n")
    assert read_table(f, "csv").column("a").to_pylist() == ["x", "y"]  # text: a category column
    with pytest.raises(DataError, match=r"t.csv:2 data.source: column 'a': not a number.*'x'"):
        read_table(f, "csv", numeric=["a"])


def test_npz_nan_and_inf_are_named_by_index(tmp_path: Path) -> None:
    x = np.zeros((5, 2), np.float32)
    x[3, 1] = np.inf
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(5))
    with pytest.raises(DataError, match=r"1 samples hold NaN or inf features \(first: sample 3\)"):
        load_npz(tmp_path / "d.npz", None)


def test_npz_nan_labels_never_become_a_class(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), y=np.array([0.0, 1.0, np.nan, 1.0]))
    with pytest.raises(DataError, match=r"1 targets are NaN \(first: sample 2\)"):
        load_npz(tmp_path / "d.npz", None)


def test_object_arrays_and_non_numpy_files_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="holds object arrays"):
        load_npy(tmp_path / "o.npy")
    (tmp_path / "t.npz").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"is not a NumPy \.npy/\.npz file"):
        load_npz(tmp_path / "t.npz", None)


def test_import_and_validate_do_not_import_pyarrow(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "data: {source: csv:x.csv, target: y}\n"
        "model: {input_shape: auto, layers: [{linear: 8}, {linear: auto}]}\n"
    )
    code = (
        "import sys, nnspec\n"
        "from nnspec.cli.main import main\n"
        f"code = main(['validate', {str(spec)!r}])\n"
        "print(code, 'pyarrow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 False"


def test_rows_after_blank_lines_and_quoted_line_breaks_keep_their_file_numbers(
    tmp_path: Path,
) -> None:
    # pyarrow skips blank lines; a bad cell below them is still named by its row in the file
    f = tmp_path / "gaps.csv"
    f.write_text('a,b\n1,x\n\n2,"two\nlines"\n\n\n3,y\nbad,z\n')
    with pytest.raises(DataError) as err:
        read_table(f, "csv", numeric=["a"])
    # rows: 1 header, 2 "1,x", 3 blank, 4 quoted (two lines), 5-6 blank, 7 "3,y", 8 "bad,z"
    (cell,) = [p for p in _problems(err) if "not a number" in p]
    assert "gaps.csv:8 " in cell and "column 'a'" in cell and "'bad'" in cell, cell
