"""The commands on a table: `nnspec data`, `validate --data`, `summary --data`, and plain
`validate` of a spec with `auto` sizes (no data opened)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnspec.cli.main import main

CSV = "size,colour,member,label\n" + "".join(
    f"{i % 7},{['red', 'blue', 'green'][i % 3] if i % 10 else ''},{'yes' if i % 2 else 'no'},"
    f"{'ab'[i % 2]}\n"
    for i in range(60)
)
SPEC = (
    "task: classification\n"
    "data: {source: csv:t.csv, target: label}\n"
    "model:\n"
    "  input_shape: auto\n"
    "  layers: [{linear: 8}, {linear: auto}]\n"
)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    (tmp_path / "t.csv").write_text(CSV)
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


def test_data_prints_the_column_table_and_the_sizes(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "csv:t.csv: 60 rows" in out
    for row in ("size", "numeric"), ("colour", "categorical", "one-hot 3 + unknown + missing"), (
        "member", "binary", "0/1 (no / yes)"
    ):  # fmt: skip
        line = next(line for line in out.splitlines() if f" {row[0]} " in line)
        assert all(word in line for word in row), line
    assert "input_shape [7], 2 classes" in out  # 1 + (3 + unknown + missing) + 1


def test_validate_without_data_accepts_auto_and_opens_nothing(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (spec.parent / "t.csv").unlink()  # plain validate never looks at the data
    assert main(["validate", str(spec)]) == 0
    assert "sizes `auto`: --data takes them from the data" in capsys.readouterr().out
    assert main(["validate", "--data", str(spec)]) == 2
    assert "data file not found" in capsys.readouterr().err


def test_validate_data_reports_data_and_shape_problems(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--data", str(spec)]) == 0
    assert "82 parameters" in capsys.readouterr().out  # (7*8 + 8) + (8*2 + 2): 2 classes
    spec.write_text(SPEC.replace("input_shape: auto", "input_shape: [5]"))
    assert main(["validate", "--data", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "model.input_shape: input_shape does not fit the data" in err and "[7]" in err
    spec.write_text(SPEC.replace("target: label", "target: lable"))
    assert main(["validate", "--data", str(spec)]) == 2
    assert "t.csv has no column 'lable'; did you mean 'label'?" in capsys.readouterr().err


def test_summary_data_shows_the_resolved_sizes(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", str(spec)]) == 2
    assert "size `auto` is taken from the data" in capsys.readouterr().err
    assert main(["summary", "--data", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "input (7,)" in out and "(2,)" in out
