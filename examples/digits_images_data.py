"""Writes ``digits_images/``, the image folder of ``digits_images.yaml``: scikit-learn's 1,797
handwritten digits as grayscale PNG files, one subfolder per class (``0`` ... ``9``).

    python examples/digits_images_data.py [OUT_FOLDER]     # default: next to this script

The 8 x 8 scans are enlarged (bicubic) to sizes drawn from 12 to 24 pixels, so the folder holds
images of mixed sizes as a real one would; the spec's ``input_shape`` fits them all to 16 x 16.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

SEED = 0
SIZES = (12, 16, 20, 24)  # the side of each written image, drawn per image


def write(folder: str | Path, seed: int = SEED) -> Path:
    """Write the PNG tree under ``folder`` (created; existing files are overwritten)."""
    from PIL import Image
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]

    digits: Any = load_digits()  # a Bunch (sklearn's stubs also allow a tuple)
    rng = np.random.default_rng(seed)
    root = Path(folder)
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        pixels = (image * (255 / 16)).round().astype(np.uint8)  # 0..16 -> 0..255
        side = int(rng.choice(SIZES))
        png = Image.fromarray(pixels, mode="L").resize((side, side), Image.Resampling.BICUBIC)
        target = root / str(label) / f"{i:04d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        png.save(target)
    return root


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("digits_images")
    print(f"wrote {len(list(write(out).rglob('*.png')))} images to {out}")
