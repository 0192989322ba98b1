"""The images:PATH source: the tree's checks, decoding to input_shape, per-channel
standardisation, predict on image files, and the digits example (slow: its acceptance score)."""

from __future__ import annotations

import csv
import runpy
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from runhelp import merge

from nnspec.cli.main import main
from nnspec.errors import DataError, SpecError
from nnspec.run import load_run
from nnspec.run.data import prepare_data
from nnspec.run.images import image_files, read_images, scan_folder
from nnspec.spec import ExperimentSpec
from nnspec.workflow import train

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FAST = ["train.num_threads=1", "train.progress=none"]


def write_digits(root: Path, per_class: int = 12, classes: int = 10) -> Path:
    """``per_class`` of scikit-learn's digits per class as 8 x 8 grayscale PNGs under ``root``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in range(classes):
        for k, i in enumerate(np.flatnonzero(digits.target == label)[:per_class]):
            pixels = (digits.images[i] * (255 / 16)).round().astype(np.uint8)
            (root / str(label)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels, mode="L").save(root / str(label) / f"{k:03d}.png")
    return root


def image_spec(tree: Path, **sections: Any) -> ExperimentSpec:
    """A tiny CNN on an image tree, 2 epochs, one thread, no progress."""
    data: dict[str, Any] = {
        "name": "imgs",
        "seed": 0,
        "task": "classification",
        "data": {"source": f"images:{tree}", "batch_size": 16},
        "model": {
            "input_shape": [1, 8, 8],
            "layers": [
                {"kind": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": "same"},
                {"kind": "flatten"},
                {"linear": "auto"},
            ],
        },
        "optim": {"kind": "adamw", "lr": 0.01},
        "train": {"epochs": 2, "num_threads": 1, "progress": "none",
                  "output_dir": str(tree.parent / "runs")},
    }  # fmt: skip
    return ExperimentSpec.model_validate(merge(data, sections))


def save(path: Path, pixels: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8), mode=mode).save(path)
    return path


# ---- the tree ----


def test_class_names_are_the_sorted_folder_names_and_nested_files_count(tmp_path: Path) -> None:
    for name in ("zebra", "ant", "cat"):
        save(tmp_path / name / "a.png", np.zeros((4, 4)))
    save(tmp_path / "cat" / "deeper" / "b.jpg", np.zeros((4, 4)))
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"\0")  # hidden: ignored
    (tmp_path / ".cache").mkdir()  # a hidden folder is no class
    folder = scan_folder(str(tmp_path), None)
    assert folder.class_names == ("ant", "cat", "zebra")
    assert [f.relative_to(tmp_path).as_posix() for f in folder.files] == [
        "ant/a.png", "cat/a.png", "cat/deeper/b.jpg", "zebra/a.png"
    ]  # fmt: skip
    assert folder.labels.tolist() == [0, 1, 1, 2]


def test_a_relative_path_resolves_against_the_spec_folder(tmp_path: Path) -> None:
    save(tmp_path / "tree" / "a" / "x.png", np.zeros((4, 4)))
    assert scan_folder("tree", tmp_path).root == tmp_path / "tree"


def test_every_problem_of_the_tree_is_reported_at_once(tmp_path: Path) -> None:
    save(tmp_path / "good" / "x.png", np.zeros((4, 4)))
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hi")
    save(tmp_path / "loose.png", np.zeros((4, 4)))
    with pytest.raises(DataError) as e:
        scan_folder(str(tmp_path), None)
    text = str(e.value)
    assert len(e.value.problems) == 3, text
    assert "1 images lie directly in" in text and "loose.png" in text
    assert "class folder 'empty' holds no images" in text and "found nothing" in text
    assert "class folder 'notes' holds no images" in text and "readme.txt" in text
    assert all(p.path == ("data", "source") for p in e.value.problems)


def test_a_tree_without_subfolders_is_refused(tmp_path: Path) -> None:
    save(tmp_path / "a.png", np.zeros((4, 4)))
    with pytest.raises(DataError, match="has no class folders") as e:
        scan_folder(str(tmp_path), None)
    assert "1 image files and no subfolder" in str(e.value)
    assert "fix: put each class's images in a subfolder" in str(e.value)


@pytest.mark.parametrize("make", ["missing", "file"])
def test_a_path_that_is_no_folder_is_refused(tmp_path: Path, make: str) -> None:
    path = tmp_path / "x"
    if make == "file":
        path.write_text("")
    with pytest.raises(DataError, match="not found" if make == "missing" else "is a file"):
        scan_folder(str(path), None)


def test_unreadable_images_are_named_all_at_once(tmp_path: Path) -> None:
    write_digits(tmp_path / "tree", per_class=3, classes=2)
    (tmp_path / "tree" / "0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    good = (tmp_path / "tree" / "1" / "000.png").read_bytes()
    (tmp_path / "tree" / "1" / "cut.png").write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(DataError) as e:
        prepare_data(image_spec(tmp_path / "tree"))
    text = str(e.value)
    assert text.startswith("2 unreadable images under")
    assert "cannot read image 0/broken.png" in text and "cannot read image 1/cut.png" in text


@pytest.mark.parametrize(
    "shape", [[8, 8], [2, 8, 8], [4, 8, 8]], ids=["2-d", "2-channels", "4-channels"]
)
def test_input_shape_must_name_grayscale_or_rgb(tmp_path: Path, shape: list[int]) -> None:
    write_digits(tmp_path / "tree", per_class=2, classes=2)
    spec = image_spec(tmp_path / "tree", model={"input_shape": shape, "layers": [{"linear": 2}]})
    with pytest.raises(SpecError, match=r"input_shape \[C, H, W\] with C = 1") as e:
        prepare_data(spec)
    assert e.value.problems[0].path == ("model", "input_shape")


# ---- decoding ----


def _one(tmp_path: Path, pixels: np.ndarray, shape: tuple[int, int, int], fit: str) -> np.ndarray:
    save(tmp_path / "c" / "x.png", pixels)
    return read_images(tmp_path / "c" / "x.png", shape, fit)[0]  # type: ignore[arg-type]


def test_fit_crop_stretch_and_pad(tmp_path: Path) -> None:
    wide = np.zeros((4, 8), dtype=np.uint8)  # 8 wide, 4 high: white columns 0-3
    wide[:, :4] = 255
    crop = _one(tmp_path, wide, (1, 4, 4), "crop")[0]  # the centre 4 x 4: columns 2-5
    assert np.allclose(crop[:, :2], 1) and np.allclose(crop[:, 2:], 0)
    # bilinear, antialiased: the two middle columns blend across the edge
    stretch = _one(tmp_path, wide, (1, 4, 4), "stretch")[0]  # columns squeezed two to one
    assert np.allclose(stretch[:, 0], 1) and np.allclose(stretch[:, 3], 0)
    assert (stretch[:, 1] > 0.5).all() and (stretch[:, 2] < 0.5).all()
    pad = _one(tmp_path, wide, (1, 4, 4), "pad")[0]  # the whole image as 4 x 2 in rows 1-2
    assert np.allclose(pad[[0, 3]], 0) and np.allclose(pad[1:3, 0], 1)
    assert np.allclose(pad[1:3, 3], 0)


def test_channels_pick_grayscale_or_rgb(tmp_path: Path) -> None:
    red = np.zeros((2, 2, 3), dtype=np.uint8)
    red[..., 0] = 255
    rgb = _one(tmp_path, red, (3, 2, 2), "crop")
    assert rgb.shape == (3, 2, 2) and np.allclose(rgb[0], 1) and np.allclose(rgb[1:], 0)
    grey = _one(tmp_path, red, (1, 2, 2), "crop")
    assert grey.shape == (1, 2, 2) and np.allclose(grey, 76 / 255)  # Pillow's luma of red


def test_mixed_sizes_are_resized_and_auto_takes_the_first_image(tmp_path: Path) -> None:
    save(tmp_path / "t" / "a" / "1.png", np.full((6, 6), 255))
    save(tmp_path / "t" / "a" / "2.png", np.full((12, 9), 255))
    save(tmp_path / "t" / "b" / "3.png", np.zeros((3, 20)))
    for k in range(3):  # enough samples for a stratified split
        save(tmp_path / "t" / "a" / f"x{k}.png", np.full((6, 6), 200))
        save(tmp_path / "t" / "b" / f"x{k}.png", np.zeros((6, 6)))
    spec = image_spec(tmp_path / "t", model={"input_shape": "auto", "layers": [{"linear": 2}]},
                      data={"split": {"train": 0.5, "val": 0.25, "test": 0.25}})  # fmt: skip
    bundle = prepare_data(spec)
    assert bundle.info.input_shape == (1, 6, 6)
    assert bundle.info.class_names == ("a", "b")


def test_images_are_standardised_per_channel_with_training_statistics(tmp_path: Path) -> None:
    write_digits(tmp_path / "tree", per_class=10)
    spec = image_spec(tmp_path / "tree")
    bundle = prepare_data(spec)
    mean, std = bundle.info.x_mean, bundle.info.x_std
    assert mean is not None and std is not None and mean.shape == (64,)
    assert bool((mean == mean[0]).all()) and bool((std == std[0]).all())  # one value per channel
    train = bundle.train.x
    assert abs(float(train.mean())) < 1e-5 and abs(float(train.std(unbiased=False)) - 1) < 1e-4
    raw = prepare_data(image_spec(tmp_path / "tree", data={"standardize": False}))
    assert raw.val is not None and bundle.val is not None
    assert np.allclose(bundle.val.x.numpy(), (raw.val.x.numpy() - float(mean[0])) / float(std[0]),
                       atol=1e-6)  # fmt: skip
    assert 0 <= float(raw.train.x.min()) and float(raw.train.x.max()) <= 1


# ---- predict ----


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = write_digits(tmp_path_factory.mktemp("digits") / "tree", per_class=10)
    return train(image_spec(tree, train={"epochs": 3})).run_dir


def test_predict_reads_a_folder_a_file_and_a_list_as_training_did(digits_run: Path) -> None:
    predictor = load_run(digits_run)
    tree = Path(predictor.spec.data.source.partition(":")[2])
    bundle = prepare_data(predictor.spec)
    assert bundle.test is not None
    with_arrays = predictor.predict_proba(read_images(image_files(tree), (1, 8, 8), "crop"))
    folder = predictor.predict_proba(tree)
    assert np.array_equal(folder, with_arrays) and folder.shape == (100, 10)
    files = image_files(tree)
    # (another batch size: the convolution may sum in another order)
    assert np.allclose(predictor.predict_proba([files[3], files[50]]), folder[[3, 50]], atol=1e-6)
    assert np.allclose(predictor.predict_proba(files[7]), folder[[7]], atol=1e-6)
    assert set(predictor.predict(tree)) <= {str(d) for d in range(10)}


def test_nnspec_predict_writes_one_row_per_image_file(digits_run: Path, tmp_path: Path) -> None:
    tree = Path(load_run(digits_run).spec.data.source.partition(":")[2])
    out = tmp_path / "p.csv"
    assert main(["predict", str(digits_run), str(tree / "3"), f"--out={out}"]) == 0
    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows[0][:2] == ["file", "prediction"] and len(rows[0]) == 12
    assert [Path(r[0]).name for r in rows[1:]] == [f"{k:03d}.png" for k in range(10)]


def test_predict_names_a_missing_image(digits_run: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"image not found: .*nope\.png"):
        load_run(digits_run).predict([tmp_path / "nope.png"])


# ---- the example ----


def _example(folder: Path) -> Path:
    runpy.run_path(str(EXAMPLES / "digits_images_data.py"))["write"](folder / "digits_images")
    shutil.copy(EXAMPLES / "digits_images.yaml", folder)
    return folder / "digits_images.yaml"


@pytest.mark.slow
def test_digits_images_example_reaches_095_over_three_seeds(tmp_path: Path) -> None:
    spec = _example(tmp_path)
    sizes = set()
    for png in (tmp_path / "digits_images").rglob("*.png"):
        with Image.open(png) as image:
            sizes.add(image.size)
    assert len(sizes) > 1  # the example's tree mixes sizes
    scores = [train(spec, [*FAST, f"seed={s}"], run_dir=tmp_path / str(s)).test_metrics["accuracy"]
              for s in (0, 1, 2)]  # fmt: skip
    print("test accuracy per seed:", scores)
    assert sum(scores) / 3 >= 0.95, scores


def test_readme_images_snippet_is_a_valid_spec() -> None:
    import re

    from nnspec.io import loads

    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme[readme.index("### Images\n") : readme.index("### Callbacks\n")]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    spec = loads(block)
    assert spec.data.source == "images:photos" and spec.data.images.fit == "crop"
    assert spec.data.augment is not None and spec.data.augment.crop_padding == 4


@pytest.mark.slow  # composes and launches through Hydra
def test_nnspec_train_reports_a_bad_tree_with_exit_2_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nnspec.io import dump

    monkeypatch.chdir(tmp_path)
    write_digits(tmp_path / "tree", per_class=10)
    (tmp_path / "tree" / "7" / "bad.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    spec = image_spec(Path("tree"), train={"output_dir": "runs"})
    (tmp_path / "s.yaml").write_text(dump(spec))
    assert main(["train", "s.yaml"]) == 2
    err = capsys.readouterr().err
    assert "cannot read image 7/bad.jpg" in err and "fix: replace or delete the file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml", "tree"]


def test_input_shape_auto_keeps_the_per_sample_shape_of_image_arrays(tmp_path: Path) -> None:
    """User arrays shaped (N, C, H, W) give input_shape (C, H, W), as an image folder does."""
    from nnspec.run.sources import user_data

    layers = [{"kind": "flatten"}, {"linear": 2}]
    spec = image_spec(tmp_path, data={"source": "user"},
                      model={"input_shape": "auto", "layers": layers})  # fmt: skip
    x = np.random.default_rng(0).random((60, 1, 4, 4)).astype(np.float32)
    bundle = prepare_data(spec, raw=user_data((x, np.arange(60) % 2)))
    assert bundle.info.input_shape == (1, 4, 4) and bundle.train.x.shape[1:] == (1, 4, 4)
