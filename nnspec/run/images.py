"""Image folders: ``images:PATH`` is a folder with one subfolder per class (sorted folder names
are the class names) holding PNG, JPEG, BMP, GIF, WebP or TIFF files, nested folders included.

The tree is checked when it is scanned (no class folders, an empty class folder, images outside
any class folder: every problem at once). The files are decoded with Pillow into memory, as
uint8 while decoding, once per run: each is converted to the colour mode that ``input_shape``'s
channel count names (1 = grayscale, 3 = RGB) and fitted to its height and width
(``data.images.fit``). An unreadable file is named with its path. ``predict`` decodes a folder,
a file or a list of files the same way (:func:`read_images`).

Images are standardised per channel, not per pixel (:func:`channel_moments`): a shift or
rotation moves a pixel's content to a position whose statistics differ, which per-pixel
statistics would turn into a large spurious input.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnspec.errors import DataError, Problem, SpecError
from nnspec.run.arrays import RawData
from nnspec.spec.experiment import ExperimentSpec
from nnspec.spec.images import ImageFit

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageFolder",
    "scan_folder",
    "image_data",
    "image_files",
    "read_images",
    "channel_moments",
    "image_channels",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
MODES = {1: "L", 3: "RGB"}  # input_shape's channel count -> Pillow's colour mode
GRAY = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
NAMED = 10  # unreadable files named one by one; the rest are counted [nnspec choice]
SOURCE = ("data", "source")


@dataclass(frozen=True)
class ImageFolder:
    """A scanned class-per-subfolder tree: every image file and its class index."""

    root: Path
    files: tuple[Path, ...]
    labels: np.ndarray  # int64, index into class_names
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.files)


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def _images_under(folder: Path) -> tuple[list[Path], list[Path]]:
    """Image files under ``folder`` (nested folders too) and the other visible files, sorted."""
    images: list[Path] = []
    others: list[Path] = []
    # links to folders below a class folder are not followed: a link cycle would never end
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath, name)
            if _visible(p):
                (images if p.suffix.lower() in IMAGE_SUFFIXES else others).append(p)
    return images, others


def scan_folder(path: str, base: Path | None) -> ImageFolder:
    """Check and list an ``images:PATH`` tree (relative paths against ``base``).

    Raises:
        DataError: no such folder, no class subfolders, images outside any class folder, or an
            empty class folder (every problem at once).
    """
    root = Path(path).expanduser()
    root = base / root if not root.is_absolute() and base is not None else root
    if not root.is_dir():
        what = "is a file, not a folder" if root.is_file() else "not found"
        raise DataError(
            Problem(
                SOURCE,
                f"images folder {what}: {root}",
                expected="a folder with one subfolder of images per class",
                fix="check the path",
            )
        )
    classes = sorted(p for p in root.iterdir() if p.is_dir() and _visible(p))
    problems = _top_level_problems(root, classes)
    files: list[Path] = []
    labels: list[int] = []
    for index, folder in enumerate(classes):
        images, others = _images_under(folder)
        if not images:
            problems.append(_empty_class(folder, others))
        files += images
        labels += [index] * len(images)
    if problems:
        raise DataError(problems)
    names = tuple(p.name for p in classes)
    return ImageFolder(root, tuple(files), np.array(labels, dtype=np.int64), names)


def _top_level_problems(root: Path, classes: list[Path]) -> list[Problem]:
    """No class folder at all, or images beside the class folders."""
    loose = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not classes:
        return [
            Problem(
                SOURCE,
                f"{root} has no class folders",
                expected=f"one subfolder per class ({root / 'CLASS' / 'x.png'})",
                found=f"{len(loose)} image files and no subfolder",
                fix="put each class's images in a subfolder named after it",
            )
        ]
    if loose:
        return [
            Problem(
                SOURCE,
                f"{len(loose)} images lie directly in {root}, outside any class folder "
                f"(first: {loose[0].name})",
                fix="move them into the subfolder of their class",
            )
        ]
    return []


def _empty_class(folder: Path, others: list[Path]) -> Problem:
    found = f"{len(others)} other files (first: {others[0].name})" if others else "nothing"
    return Problem(
        SOURCE,
        f"class folder '{folder.name}' holds no images",
        expected=", ".join(sorted(IMAGE_SUFFIXES)) + " files",
        found=found,
        fix=f"add images or remove {folder}",
    )


def _shape(spec: ExperimentSpec, first: Path, root: Path) -> tuple[int, int, int]:
    """(C, H, W) from ``input_shape``, or from the first image for ``auto``."""
    shape = spec.model.input_shape
    if shape == "auto":
        try:
            image = _open(first, None)
        except (OSError, ValueError, SyntaxError) as e:
            raise _unreadable([(first, str(e))], root, SOURCE) from e
        return 1 if image.mode in GRAY else 3, image.height, image.width
    if shape is None or len(shape) != 3 or shape[0] not in MODES:
        raise SpecError(
            Problem(
                ("model", "input_shape"),
                "an images: source needs input_shape [C, H, W] with C = 1 (grayscale) or 3 (RGB)",
                found=str(list(shape) if shape is not None else None),
                fix="set model.input_shape: [1, 28, 28] for grayscale or [3, 32, 32] for RGB",
            )
        )
    return int(shape[0]), int(shape[1]), int(shape[2])


def _open(file: Path, mode: str | None) -> Any:
    """One image, loaded (lazy decoding would hide a truncated file), in ``mode``."""
    from PIL import Image

    with Image.open(file) as opened:
        opened.load()
        image: Any = opened
        if image.mode == "I" or image.mode.startswith("I;"):  # 16-bit grayscale: to 8 bits
            wide = np.asarray(image, dtype=np.float64) / 257
            image = Image.fromarray(wide.round().clip(0, 255).astype(np.uint8))
        return image.convert(mode) if mode is not None and image.mode != mode else image.copy()


def _fit(image: Any, height: int, width: int, fit: ImageFit) -> Any:
    """``image`` at ``width`` x ``height`` (bilinear, antialiased when it shrinks)."""
    from PIL import Image

    w, h = image.size
    if (w, h) == (width, height):
        return image
    bilinear = Image.Resampling.BILINEAR
    if fit == "stretch":
        return image.resize((width, height), bilinear)
    if fit == "crop":  # the centre window of the target's aspect ratio
        cw, ch = min(w, h * width / height), min(h, w * height / width)
        box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
        return image.resize((width, height), bilinear, box=box)
    s = min(width / w, height / h)  # pad: the whole image, centred on black
    inner = image.resize((max(1, round(w * s)), max(1, round(h * s))), bilinear)
    canvas = Image.new(image.mode, (width, height))
    canvas.paste(inner, ((width - inner.width) // 2, (height - inner.height) // 2))
    return canvas


def _decode(file: Path, shape: tuple[int, int, int], fit: ImageFit) -> np.ndarray:
    channels, height, width = shape
    image = _fit(_open(file, MODES[channels]), height, width, fit)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def _name(file: Path, root: Path) -> str:
    try:
        return str(file.relative_to(root))
    except ValueError:
        return str(file)


def decode_images(
    files: Sequence[Path],
    shape: tuple[int, int, int],
    fit: ImageFit,
    root: Path,
    field: tuple[str, ...] = SOURCE,
) -> np.ndarray:
    """Decode ``files`` into a float32 array (N, C, H, W) of values in [0, 1].

    Raises:
        DataError: every file Pillow cannot read (the first ones by name, the rest counted).
    """
    from PIL import Image

    out = np.empty((len(files), *shape), dtype=np.uint8)
    bad: list[tuple[Path, str]] = []
    unreadable = (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
                  Image.DecompressionBombWarning)  # fmt: skip

    def one(i: int) -> None:
        try:
            out[i] = _decode(files[i], shape, fit)
        except unreadable as e:
            bad.append((files[i], str(e) or type(e).__name__))

    # Pillow decodes outside the GIL; the warning filter turns an image past Pillow's pixel
    # limit into a reported file (a decompression bomb), not a passing warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(one, range(len(files))))
    if bad:
        raise _unreadable(sorted(bad), root, field)
    return out.astype(np.float32) / 255.0


def _unreadable(bad: list[tuple[Path, str]], root: Path, field: tuple[str, ...]) -> DataError:
    problems = [
        Problem(field, f"cannot read image {_name(f, root)}: {why}",
                fix="replace or delete the file")
        for f, why in bad[:NAMED]
    ]  # fmt: skip
    if len(bad) > NAMED:
        problems.append(Problem(field, f"... and {len(bad) - NAMED} more unreadable images"))
    return DataError(problems, title=f"{len(bad)} unreadable images under {root}")


def image_data(folder: ImageFolder, spec: ExperimentSpec) -> RawData:
    """The decoded images of a scanned folder as samples, the class names its folder names."""
    shape = _shape(spec, folder.files[0], folder.root)
    x = decode_images(folder.files, shape, spec.data.images.fit, folder.root)
    return RawData(x, folder.labels, (), folder.class_names, meta={"channels": shape[0]})


def image_files(source: str | Path | Iterable[str | Path]) -> list[Path]:
    """The files ``predict`` reads, in its row order: a folder's images (nested folders too,
    sorted by path), one file, or a list of files as given.

    Raises:
        DataError: a path that does not exist, or a folder without images.
    """
    if isinstance(source, (str, Path)):
        p = Path(source).expanduser()
        if p.is_dir():
            files = _images_under(p)[0]
            if not files:
                raise DataError(
                    Problem(
                        ("data",),
                        f"{p} holds no images",
                        expected=", ".join(sorted(IMAGE_SUFFIXES)) + " files",
                    )
                )
            return files
        paths = [p]
    else:
        paths = [Path(s).expanduser() for s in source]
    missing = [Problem(("data",), f"image not found: {p}") for p in paths if not p.is_file()]
    if missing:
        raise DataError(missing)
    return paths


def read_images(source: Any, input_shape: Sequence[int], fit: ImageFit) -> np.ndarray:
    """Images for ``predict``, decoded as the run's training images were (values in [0, 1])."""
    files = image_files(source)
    root = Path(source) if isinstance(source, (str, Path)) and Path(source).is_dir() else Path()
    c, h, w = (int(d) for d in input_shape)
    return decode_images(files, (c, h, w), fit, root, field=("data",))


def channel_moments(
    rows: Any, train: np.ndarray, channels: int, check: Any, workers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std per channel of the training rows (DATA-5), repeated per feature, so the run
    saves and ``predict`` applies them as per-feature statistics.

    They come exactly from the per-feature float64 moments of one pass over the rows: a
    channel's mean is the mean of its pixels' means, its variance the mean of their second
    moments minus the squared mean.
    """
    from nnspec.run.streams import fit_moments

    mean, std = fit_moments(rows, train, check or (lambda chunk, start: None), workers)
    mean, std = mean.reshape(channels, -1), std.reshape(channels, -1)
    c_mean = mean.mean(axis=1)
    c_var = np.maximum((std**2 + mean**2).mean(axis=1) - c_mean**2, 0.0)
    c_std = np.where(np.sqrt(c_var) > 1e-8, np.sqrt(c_var), 1.0)  # a constant channel keeps 1
    pixels = mean.shape[1]
    return (torch.from_numpy(np.repeat(c_mean, pixels).astype(np.float32)),
            torch.from_numpy(np.repeat(c_std, pixels).astype(np.float32)))  # fmt: skip


def image_channels(spec: ExperimentSpec, raw: object, shape: tuple[int, ...]) -> int | None:
    """The channel count when the inputs are standardised per channel (an images: source, or
    inputs that ``data.augment`` moves), else None.

    Raises:
        SpecError: ``data.augment`` that cannot apply to inputs of this shape.
    """
    from nnspec.run.augment import check_augment

    augment = spec.data.augment
    if augment.active:
        check_augment(augment, shape)
        return shape[0]
    if isinstance(raw, RawData) and "channels" in raw.meta:
        return int(raw.meta["channels"])
    return None
