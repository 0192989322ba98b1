"""Sweep reports rebuilt from trial directories (no training: records are written by hand)."""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import pytest

from nnspec.cli.main import main as nnspec_main
from nnspec.hydra.compose import compose
from nnspec.hydra.presets import canonical, render
from nnspec.hydra.report import build_report, collect, render_markdown
from nnspec.hydra.trial import TrialRecord, read_record, write_record


@functools.cache
def _config_text(override: str) -> str:
    return render(canonical(compose([override])))


def _trial(
    sweep: Path, num: int, overrides: list[str], objective: float | None, **kw: object
) -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    lr = next(o for o in overrides if o.startswith("optim.lr="))
    (job / ".hydra" / "config.yaml").write_text(_config_text(lr if objective else "seed=0"))
    if objective is None and kw.get("status") == "incomplete":
        return  # an interrupted trial: no trial.json
    if objective is None:
        write_record(job, TrialRecord.failed(overrides, str(kw.get("reason", "boom"))))
        return
    write_record(
        job,
        TrialRecord(
            overrides=overrides,
            status="ok",
            objective=objective,
            monitor="val_accuracy",
            mode="max",
            best_epoch=3,
            epochs_run=4,
            wall_time=1.5,
            n_params=100,
            test_metrics={"accuracy": objective - 0.01},
            val_metrics={"accuracy": objective, "loss": 1 - objective},
        ),
    )


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    d = tmp_path / "sweep"
    _trial(d, 0, ["optim.lr=0.001", "seed=0"], 0.90)
    _trial(d, 1, ["optim.lr=0.01", "seed=0"], 0.95)
    _trial(d, 2, ["optim.lr=0.001", "seed=1"], 0.92)
    _trial(d, 3, ["optim.lr=0.01", "seed=1"], 0.97)
    _trial(d, 4, ["optim.lr=-1", "seed=0"], None, reason="SpecError: optim.lr: must be > 0")
    _trial(d, 5, ["optim.lr=0.1", "seed=1"], None, status="incomplete")
    return d


def test_rows_sorted_by_objective_with_failures_last(sweep: Path) -> None:
    report = collect(sweep)
    assert [r.trial for r in report.rows[:4]] == ["3", "1", "2", "0"]  # mode max: best first
    assert {r.record.status for r in report.rows[4:]} == {"failed", "incomplete"}
    assert report.best is not None and report.best.trial == "3"
    assert report.swept == ["optim.lr", "seed"]


def test_files_written_and_failure_reason_in_summary(sweep: Path) -> None:
    build_report(sweep)
    rows = list(csv.DictReader((sweep / "sweep_summary.csv").read_text().splitlines()))
    assert len(rows) == 6
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["overrides"] == "optim.lr=-1 seed=0"
    assert failed["reason"] == "SpecError: optim.lr: must be > 0"
    assert rows[0]["trial"] == "3" and rows[0]["val_accuracy"] == "0.97"
    assert (sweep / "sweep_plot.png").stat().st_size > 1000
    best = (sweep / "best_spec.yaml").read_text()
    assert "lr: 0.01" in best
    assert "optim.lr=0.01 seed=1" in (sweep / "sweep_summary.md").read_text()


def test_seed_replicates_are_aggregated(sweep: Path) -> None:
    md = render_markdown(collect(sweep))
    assert "## Seed replicates (mean ± std)" in md
    line = next(x for x in md.splitlines() if x.startswith("| optim.lr=0.01 |"))
    assert "| 2 | 0.96 ± 0.014 |" in line  # mean of 0.95 and 0.97, sample std 0.0141


def test_incomplete_trial_read_from_hydra_overrides(sweep: Path) -> None:
    record = read_record(sweep / "5")
    assert record.status == "incomplete" and record.overrides == ["optim.lr=0.1", "seed=1"]


def test_report_command_rebuilds_and_exits_nonzero_on_failures(
    sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert nnspec_main(["report", str(sweep)]) == 1
    assert "6 trials, 4 ok, 2 failed or incomplete" in capsys.readouterr().out
    assert (sweep / "sweep_summary.md").is_file()


def test_report_command_refuses_a_non_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert nnspec_main(["report", str(tmp_path)]) == 2
    assert "holds no Hydra trial directories" in capsys.readouterr().err
    assert nnspec_main(["report", str(tmp_path / "nope")]) == 2
    assert f"no such directory: {tmp_path / 'nope'}" in capsys.readouterr().err


def test_test_metrics_stay_out_of_the_summary_unless_revealed(sweep: Path) -> None:
    build_report(sweep)
    files = [sweep / "sweep_summary.csv", sweep / "sweep_summary.md"]
    header = next(csv.reader(files[0].read_text().splitlines()))
    assert [h for h in header if "test" in h] == [] and "val_accuracy" in header
    assert "test_accuracy" not in files[1].read_text() and "0.96 |" not in files[1].read_text()
    assert "Test metrics are hidden (test-set lock)" in files[1].read_text()
    assert nnspec_main(["report", str(sweep), "--reveal-test"]) == 1
    rows = list(csv.DictReader(files[0].read_text().splitlines()))
    assert rows[0]["test_accuracy"] == "0.96" and "test_accuracy" in files[1].read_text()


def test_the_best_of_a_seeded_grid_is_the_best_mean(tmp_path: Path) -> None:
    d = tmp_path / "sweep"
    _trial(d, 0, ["optim.lr=0.001", "seed=0"], 0.99)  # the single best trial...
    _trial(d, 1, ["optim.lr=0.001", "seed=1"], 0.80)  # ...of the worse configuration
    _trial(d, 2, ["optim.lr=0.01", "seed=0"], 0.95)
    _trial(d, 3, ["optim.lr=0.01", "seed=1"], 0.94)
    report = build_report(d)
    assert report.best is not None and report.best.trial == "2"  # mean 0.945 > 0.895
    assert "lr: 0.01" in (d / "best_spec.yaml").read_text()
    assert "best mean over seeds" in (d / "sweep_summary.md").read_text()
