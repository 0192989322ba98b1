"""Test accuracy of the digits CNN (examples/digits_cnn.yaml) trained plainly, with an EMA of
its weights and with SWA, same seeds and splits; the averaged runs use the average's weights.

    python bench/bench_averaging.py [--seeds 0 1 2]

Prints one line per variant: mean test accuracy over the seeds, and each seed's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import nnspec

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits_cnn.yaml"
VARIANTS = {
    "plain": [],
    "ema (decay 0.99, every step)": ["+train.ema.decay=0.99"],
    "swa (from epoch 20, lr 5e-4)": ["+train.swa.start_epoch=20", "+train.swa.lr=5e-4",
                                     "+train.swa.anneal_epochs=3"],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        for name, overrides in VARIANTS.items():
            accs = []
            for seed in args.seeds:
                result = nnspec.train(EXAMPLE, [*overrides, f"seed={seed}", "train.progress=none",
                                                f"train.output_dir={out}"])  # fmt: skip
                accs.append(result.test_metrics["accuracy"])
            shown = ", ".join(f"{a:.4f}" for a in accs)
            print(f"{name:32s} mean test accuracy {statistics.mean(accs):.4f}  ({shown})")


if __name__ == "__main__":
    main()
