"""Writes ``multi_io.csv``, the data of ``multi_io.yaml``: a shop's customers with numeric and
low-cardinality columns (the tabular branch), a high-cardinality ``city`` column (the embedding
branch: 400 cities, each with its own effect) and two targets, the customer's ``segment`` (text,
three classes) and yearly ``spend`` (a number).

    python examples/multi_io_data.py [OUT.csv]     # default: next to this script

The rows are drawn from a seeded generator; both targets depend on the numeric columns and on the
city's hidden effects, plus noise, so neither is predicted exactly.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

ROWS = 6000
SEED = 0
N_CITIES = 400
CHANNELS = ("web", "store", "phone")
SEGMENTS = ("budget", "regular", "premium")


def make_rows(rows: int = ROWS, seed: int = SEED) -> dict[str, list[str]]:
    """The table as text columns."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 80, rows)
    income = rng.lognormal(10.5, 0.4, rows)
    visits = rng.poisson(6, rows)
    channel = rng.integers(0, len(CHANNELS), rows)
    city = rng.integers(0, N_CITIES, rows)
    city_fx = rng.normal(0, 1.0, (N_CITIES, 2))  # (segment score, spend) effect of each city
    z_age, z_inc = (age - 49) / 18, (np.log(income) - 10.5) / 0.4
    score = 1.2 * z_inc + 0.4 * z_age + 1.5 * city_fx[city, 0] + rng.normal(0, 0.5, rows)
    segment = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    spend = (
        500 + 120 * z_inc + 30 * visits + 90 * city_fx[city, 1] + 40 * (channel == 0)
        + rng.normal(0, 25, rows)
    )  # fmt: skip
    return {
        "age": [f"{v:.1f}" for v in age],
        "income": [f"{v:.0f}" for v in income],
        "visits": [str(v) for v in visits],
        "channel": [CHANNELS[c] for c in channel],
        "city": [f"city_{c:03d}" for c in city],
        "segment": [SEGMENTS[s] for s in segment],
        "spend": [f"{v:.2f}" for v in spend],
    }


def write(path: Path, rows: int = ROWS, seed: int = SEED) -> Path:
    """Write the table to ``path`` (the same bytes for the same rows and seed)."""
    table = make_rows(rows, seed)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(table)
        out.writerows(zip(*table.values(), strict=True))
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("multi_io.csv")
    print(write(target))
