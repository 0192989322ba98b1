"""Sweep reports: one row per trial, sorted by the objective, rebuilt from the trial directories.

``build_report(sweep_dir)`` reads every job directory's ``trial.json`` (a directory without one is
an ``incomplete`` trial, e.g. from an interrupted sweep) and writes ``sweep_summary.csv``,
``sweep_summary.md``, ``best_spec.yaml`` (the best trial's resolved spec) and ``sweep_plot.png``
(the objective against each swept parameter). Seed replicates (``seed=0,1,2``) are aggregated into
mean ± std per configuration, and the best configuration is then the one with the best mean.

Test-set lock: tables, plot and the best choice use validation metrics only; the trials' test
metrics are left out of ``sweep_summary.*`` unless ``reveal_test`` is set (``nnspec train -m
--reveal-test``, ``nnspec report --reveal-test``), so a sweep cannot be tuned on the test set.
Hydra calls it at the end of a multirun through
:class:`SweepReportCallback`; ``nnspec report SWEEP_DIR`` calls it by hand.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnspec.files import atomic_write, atomic_write_bytes
from nnspec.hydra.trial import TrialRecord, read_record

__all__ = [
    "Row",
    "SweepReport",
    "collect",
    "build_report",
    "render_markdown",
    "SweepReportCallback",
]

SUMMARY_CSV = "sweep_summary.csv"
SUMMARY_MD = "sweep_summary.md"
BEST_SPEC = "best_spec.yaml"
PLOT = "sweep_plot.png"


@dataclass(frozen=True)
class Row:
    """One trial of the sweep."""

    trial: str
    job_dir: Path
    record: TrialRecord

    @property
    def params(self) -> dict[str, str]:
        """``key -> value`` of the trial's overrides."""
        return dict(o.split("=", 1) for o in self.record.overrides if "=" in o)


@dataclass(frozen=True)
class SweepReport:
    """The rows (sorted best first) and what the files were built from."""

    sweep_dir: Path
    rows: list[Row]
    mode: str
    swept: list[str]
    reveal_test: bool = False

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.record.status != "ok"]

    @property
    def best(self) -> Row | None:
        """The best trial; with seed replicates, the best trial of the configuration whose
        objective has the best mean over its seeds."""
        ok = [r for r in self.rows if r.record.status == "ok" and r.record.objective is not None]
        if not ok:
            return None
        groups = _configurations(self, ok)
        if len(groups) == len(ok):
            return ok[0]
        sign = -1.0 if self.mode == "max" else 1.0
        rows = min(groups.values(), key=lambda g: sign * statistics.fmean(
            r.record.objective for r in g if r.record.objective is not None))  # fmt: skip
        return rows[0]


def _configurations(report: SweepReport, rows: list[Row]) -> dict[str, list[Row]]:
    """Rows grouped by what tells configurations apart (every swept key but ``seed``)."""
    axes = [k for k in report.swept if k != "seed"]
    groups: dict[str, list[Row]] = {}
    for r in rows:
        config = " ".join(f"{k}={r.params.get(k, '')}" for k in axes)
        groups.setdefault(config or "(base)", []).append(r)
    return groups


def _job_dirs(sweep_dir: Path) -> list[Path]:
    dirs = [p for p in sweep_dir.iterdir() if p.is_dir() and (p / ".hydra").is_dir()]
    return sorted(
        dirs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name)
    )


def _sort_key(mode: str) -> Any:
    def key(row: Row) -> tuple[int, float]:
        obj = row.record.objective
        if row.record.status != "ok" or obj is None or math.isnan(obj):
            return (1, 0.0)
        return (0, -obj if mode == "max" else obj)

    return key


def collect(sweep_dir: Path, *, reveal_test: bool = False) -> SweepReport:
    """Read every trial of a sweep directory (finished, failed or never finished)."""
    rows = [Row(p.name, p, read_record(p)) for p in _job_dirs(Path(sweep_dir))]
    modes = [r.record.mode for r in rows if r.record.status == "ok"]
    mode = modes[0] if modes else "min"
    values: dict[str, set[str]] = {}
    for r in rows:
        for k, v in r.params.items():
            values.setdefault(k, set()).add(v)
    swept = sorted(k for k, vs in values.items() if len(vs) > 1)
    rows = sorted(rows, key=_sort_key(mode))
    return SweepReport(Path(sweep_dir), rows, mode, swept, reveal_test)


def _metrics(report: SweepReport) -> list[tuple[str, str]]:
    """``(column, metric)`` pairs shown: validation metrics, test metrics only when revealed."""
    val = sorted({m for r in report.rows for m in r.record.val_metrics})
    test = sorted({m for r in report.rows for m in r.record.test_metrics})
    return [*((f"val_{m}", m) for m in val),
            *((f"test_{m}", m) for m in (test if report.reveal_test else []))]  # fmt: skip


def _value(record: TrialRecord, column: str, metric: str) -> float | None:
    source = record.val_metrics if column.startswith("val_") else record.test_metrics
    return source.get(metric)


def _fmt(x: float | None, digits: int = 4) -> str:
    return "" if x is None else f"{x:.{digits}g}"


def _shown(report: SweepReport, row: Row, swept_only: bool) -> str:
    if not swept_only or not report.swept:
        return " ".join(row.record.overrides)
    return " ".join(f"{k}={row.params[k]}" for k in report.swept if k in row.params)


def common_overrides(report: SweepReport) -> list[str]:
    """Overrides every trial shares (written once above the Markdown table)."""
    sets = [set(r.record.overrides) for r in report.rows if r.record.overrides]
    first = report.rows[0].record.overrides if report.rows else []
    return [o for o in first if sets and all(o in s for s in sets)]


def table(report: SweepReport, swept_only: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-trial table (CSV: every override; Markdown: swept ones)."""
    metrics = _metrics(report)
    header = ["trial", "overrides", "status", "objective", *(c for c, _ in metrics)]
    header += ["time_s", "best_epoch", "reason"]
    body = []
    for r in report.rows:
        rec = r.record
        body.append(
            [r.trial, _shown(report, r, swept_only), rec.status, _fmt(rec.objective)]
            + [_fmt(_value(rec, c, m)) for c, m in metrics]
            + [_fmt(rec.wall_time, 3), "" if rec.best_epoch is None else str(rec.best_epoch)]
            + [rec.reason]
        )
    return header, body


def replicates(report: SweepReport) -> list[tuple[str, int, str, dict[str, str]]]:
    """Mean ± std of the objective and shown metrics per configuration over ``seed`` values."""
    if "seed" not in report.swept:
        return []
    ok = [r for r in report.rows if r.record.status == "ok"]
    out = []
    for config, rows in _configurations(report, ok).items():
        recs = [r.record for r in rows]
        metrics = {
            c: _mean_std([v for x in recs if (v := _value(x, c, m)) is not None])
            for c, m in _metrics(report)
        }
        out.append((config, len(recs), _mean_std([x.objective or 0.0 for x in recs]), metrics))
    return out


def _mean_std(xs: Sequence[float]) -> str:
    if not xs:
        return ""
    std = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):.4g} ± {std:.2g}"


def _md_table(header: list[str], body: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in body]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in esc])


def render_markdown(report: SweepReport) -> str:
    """``sweep_summary.md``: the trial table, best trial, failures, replicate aggregates."""
    header, body = table(report, swept_only=True)
    ok = len(report.rows) - len(report.failed)
    common = common_overrides(report)
    monitor = next((r.record.monitor for r in report.rows if r.record.monitor), "objective")
    k = max((len(r.record.seeds) for r in report.rows), default=0)
    seeds = f", the mean over each trial's {k} seeds" if k > 1 else ""
    parts = [
        f"# Sweep summary: {report.sweep_dir.name}",
        "",
        f"{len(report.rows)} trials, {ok} ok, {len(report.failed)} failed or incomplete. "
        f"Objective: {monitor} ({report.mode}){seeds}, best first.",
        "",
        *([f"Every trial: `{' '.join(common)}`", ""] if common else []),
        _md_table(header, body),
    ]
    if report.best is not None:
        how = " (the configuration with the best mean over seeds)" if replicates(report) else ""
        best = report.best
        parts += ["", f"Best: trial {best.trial}{how} ({' '.join(best.record.overrides)})"]
    if not report.reveal_test:
        parts += ["", "Test metrics are hidden (test-set lock): the best is chosen on validation "
                  "metrics only. `nnspec report SWEEP_DIR --reveal-test` shows them."]  # fmt: skip
    parts += _pareto_section(report.sweep_dir)
    reps = replicates(report)
    if reps:
        metrics = [c for c, _ in _metrics(report)]
        rows = [[c, str(n), obj, *(m[k] for k in metrics)] for c, n, obj, m in reps]
        parts += [
            "",
            "## Seed replicates (mean ± std)",
            "",
            _md_table(["configuration", "seeds", "objective", *metrics], rows),
        ]
    return "\n".join(parts) + "\n"


def _pareto_section(sweep_dir: Path) -> list[str]:
    """A multi-objective study's Pareto front (``pareto_front.json``), best trials by number."""
    from nnspec.hydra.objectives import read_pareto

    front = read_pareto(sweep_dir)
    if not front:
        return []
    names = list(front[0]["values"])
    rows = [[str(p["trial"]), *(_fmt(p["values"][n]) for n in names),
             " ".join(f"{k}={v}" for k, v in p["params"].items())]
            for p in sorted(front, key=lambda p: p["trial"])]  # fmt: skip
    head = f"## Pareto front ({', '.join(names)}): no trial here is beaten on every objective"
    return ["", head, "", _md_table(["trial", *names, "params"], rows)]


def _csv_text(report: SweepReport) -> str:
    header, body = table(report)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(body)
    return buf.getvalue()


def _best_spec_text(row: Row) -> str | None:
    """The best trial's composed config, validated and dumped canonically."""
    from omegaconf import OmegaConf

    from nnspec.hydra.compose import validate_container

    path = row.job_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return None
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    spec = validate_container(data)  # type: ignore[arg-type]
    from nnspec.io import dump

    return dump(spec)


def plot(report: SweepReport, path: Path) -> bool:
    """Scatter of the objective against each swept parameter (categorical axes for text)."""
    ok = [r for r in report.rows if r.record.status == "ok" and r.record.objective is not None]
    if not ok or not report.swept:
        return False
    from nnspec.figures import new_figure, png_bytes

    fig, axes = new_figure(len(report.swept), width=4.0, height=3.2)
    for ax, key in zip(axes, report.swept, strict=True):
        has = [r for r in ok if key in r.params]  # a conditional parameter: only where sampled
        xs = [r.params[key] for r in has]
        ys = [r.record.objective for r in has]
        try:
            ax.scatter([float(x) for x in xs], ys)
            if key.endswith(("lr", "weight_decay")):
                ax.set_xscale("log")
        except ValueError:  # categorical values (optimizer names, ...)
            ax.scatter(xs, ys)
        ax.set_xlabel(key)
        ax.set_ylabel(ok[0].record.monitor or "objective")
    atomic_write_bytes(path, png_bytes(fig))
    return True


def build_report(sweep_dir: Path | str, *, reveal_test: bool = False) -> SweepReport:
    """Write the summary files of a sweep directory from its trial directories."""
    report = collect(Path(sweep_dir), reveal_test=reveal_test)
    atomic_write(report.sweep_dir / SUMMARY_CSV, _csv_text(report))
    atomic_write(report.sweep_dir / SUMMARY_MD, render_markdown(report))
    if report.best is not None:
        text = _best_spec_text(report.best)
        if text is not None:
            atomic_write(report.sweep_dir / BEST_SPEC, text)
    plot(report, report.sweep_dir / PLOT)
    return report


try:  # the callback base lives in Hydra; this module is only imported where Hydra runs
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - hydra is a hard dependency
    Callback = object  # type: ignore[assignment,misc]


class SweepReportCallback(Callback):  # type: ignore[misc]
    """Hydra callback: writes the sweep report when a multirun ends (any sweeper, any launcher).

    ``reveal_test`` (``nnspec train -m --reveal-test``) lifts the test-set lock.
    """

    def __init__(self, reveal_test: bool = False) -> None:
        self.reveal_test = reveal_test

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        build_report(sweep_dir, reveal_test=self.reveal_test)
