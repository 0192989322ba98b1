"""Writes ``mixed_tabular.csv``, the data of ``mixed_tabular.yaml``: a customer table with
numeric, low- and high-cardinality categorical and binary columns, 5% missing cells and a text
target (``stay``, ``churn`` or ``upgrade``).

    python examples/mixed_tabular_data.py [OUT.csv]     # default: next to this script

The rows are drawn from a seeded generator: the plan's class scores are additive effects of the
columns (a product with its own effect, a region, age, income, tenure, membership) plus noise,
so no model reaches 100%; 5% of the feature cells are then blanked at random.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROWS = 8000
SEED = 0
MISSING = 0.05  # share of feature cells left empty
REGIONS = ("north", "south", "east", "west", "centre")
N_PRODUCTS = 120  # high cardinality: one-hot needs data.max_categories >= 120 to keep them all
CLASSES = ("stay", "churn", "upgrade")


def make_rows(rows: int = ROWS, seed: int = SEED) -> dict[str, list[str]]:
    """The table as text columns (empty string = missing cell)."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 80, rows)
    income = rng.lognormal(10.5, 0.5, rows)
    tenure = rng.exponential(4.0, rows)
    region = rng.integers(0, len(REGIONS), rows)
    product = rng.zipf(1.3, rows) % N_PRODUCTS  # a few frequent products, a long tail
    member = rng.random(rows) < 0.4
    z_age, z_inc = (age - 49) / 18, (np.log(income) - 10.5) / 0.5
    region_fx = rng.normal(0, 0.6, (len(REGIONS), 2))
    product_fx = rng.normal(0, 0.8, (N_PRODUCTS, 2))
    fx = region_fx[region] + product_fx[product]  # (rows, 2): the churn and upgrade effects
    churn = -0.9 * z_age + 0.7 * z_inc - 0.25 * tenure - 0.6 * member + fx[:, 0]
    upgrade = -0.6 + 0.6 * z_inc + 0.8 * member + 0.1 * (tenure - 4) + fx[:, 1]
    scores = np.stack([np.zeros(rows), churn, upgrade], axis=1) + rng.gumbel(size=(rows, 3)) * 0.7
    label = np.array(CLASSES)[scores.argmax(axis=1)]
    table = {
        "age": [f"{v:.0f}" for v in age],
        "income": [f"{v:.2f}" for v in income],
        "tenure_years": [f"{v:.2f}" for v in tenure],
        "region": [REGIONS[r] for r in region],
        "product": [f"P{p:03d}" for p in product],
        "member": ["yes" if m else "no" for m in member],
    }
    for values in table.values():
        for i in np.flatnonzero(rng.random(rows) < MISSING):
            values[i] = ""
    table["label"] = label.tolist()
    return table


def write(path: Path, rows: int = ROWS, seed: int = SEED) -> Path:
    """Write the table as CSV to ``path``."""
    table = make_rows(rows, seed)
    lines = [",".join(table)] + [",".join(row) for row in zip(*table.values(), strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("mixed_tabular.csv")
    print(write(out))
