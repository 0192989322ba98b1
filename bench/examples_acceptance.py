"""Acceptance numbers for the example specs: mean test score over seeds 0, 1, 2 (each seed a
different split and init), one process per run, one torch thread each. Run by hand:

    .venv/bin/python bench/examples_acceptance.py [example ...]

Prints a table: example, metric, per-seed scores, mean, target, wall time per run. For diabetes
the target is a linear regression's R^2 on the same splits minus 0.05.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {
    "digits_cnn": ("accuracy", 0.975),
    "breast_cancer_mlp": ("accuracy", 0.95),
    "wine_mlp": ("accuracy", 0.94),
    "iris_mlp": ("accuracy", 0.93),
    "diabetes_mlp": ("r2", None),  # linear regression on the same splits - 0.05
    "synthetic_mlp": ("accuracy", None),
}
SEEDS = (0, 1, 2)


def linear_r2(example: str, seed: int) -> float:
    """R^2 of sklearn's LinearRegression on the same split as the nnspec run."""
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    from nnspec.io import load
    from nnspec.run.data import prepare_data

    spec = load(ROOT / "examples" / f"{example}.yaml").model_copy(update={"seed": seed})
    b = prepare_data(spec)
    model = LinearRegression().fit(b.train.x.numpy(), b.train.y.numpy())
    return float(r2_score(b.test.y.numpy(), model.predict(b.test.x.numpy())))


def one_run(example: str, seed: int, out: Path) -> tuple[float, float]:
    run_dir = out / f"{example}-{seed}"
    code = (
        "from nnspec.workflow import train; "
        f"train({str(ROOT / 'examples' / (example + '.yaml'))!r}, "
        f"['seed={seed}', 'train.num_threads=1', 'train.progress=none'], run_dir={str(run_dir)!r})"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary["test_metrics"][TARGETS[example][0]], wall


def main(examples: list[str]) -> None:
    out = Path(tempfile.mkdtemp(prefix="nnspec-accept-"))
    jobs = [(e, s) for e in examples for s in SEEDS]
    with ThreadPoolExecutor(max_workers=2) as pool:  # 2 cores: 2 single-threaded runs at a time
        results = list(pool.map(lambda job: one_run(*job, out), jobs))
    print(
        f"{'example':<20} {'metric':<9} {'seeds 0/1/2':<26} {'mean':>7} {'target':>7} {'s/run':>6}"
    )
    for i, example in enumerate(examples):
        scores = [r[0] for r in results[3 * i : 3 * i + 3]]
        walls = [r[1] for r in results[3 * i : 3 * i + 3]]
        metric, target = TARGETS[example]
        if example == "diabetes_mlp":
            target = sum(linear_r2(example, s) for s in SEEDS) / 3 - 0.05
        mean = sum(scores) / 3
        cells = " ".join(f"{s:.4f}" for s in scores)
        flag = "" if target is None else ("  ok" if mean >= target else "  BELOW")
        tgt = "-" if target is None else f"{target:.4f}"
        wall = sum(walls) / 3
        print(f"{example:<20} {metric:<9} {cells:<26} {mean:7.4f} {tgt:>7} {wall:6.1f}{flag}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(TARGETS))
