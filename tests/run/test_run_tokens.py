"""Token-sequence inputs: the synthetic token tasks, int64 ids for an input embedding (never
standardised, checked against num_embeddings) through training, prediction, eval and the checks;
and the input_shape-vs-data error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from runhelp import merge, tiny

import nnspec
from nnspec.check.context import input_probe
from nnspec.errors import DataError
from nnspec.run.data import prepare_data, user_data
from nnspec.run.sources import RawData, load_source
from nnspec.run.synthetic import place_tokens
from nnspec.run.tokens import input_embeddings, token_array
from nnspec.spec import ExperimentSpec, ModelSpec
from nnspec.spec.data import DataSpec

EMBED = {"kind": "embedding", "num_embeddings": 10, "embedding_dim": 8}


def _token_spec(tmp_path: Path, **sections: Any) -> ExperimentSpec:
    """A tiny embedding + GRU classifier on synthetic:sequence_count (length 12)."""
    base = {
        "data": {
            "source": "synthetic:sequence_count",
            "n_samples": 200,
            "split": {"stratify": False},
        },
        "model": {"input_shape": [12], "layers": [EMBED, {"gru": 8}, {"linear": 5}]},
        "train": {"epochs": 1, "max_steps": 3},
    }
    spec = tiny(tmp_path, **merge(base, sections))
    # tiny() carries the classification generator's options; the token task takes its own.
    options = {"length": 12, "max_count": 4, **sections.get("data", {}).get("options", {})}
    return spec.model_copy(update={"data": spec.data.model_copy(update={"options": options})})


# ---- generators ----


def test_count_task_labels_are_the_count_of_token_a_and_balanced() -> None:
    raw = load_source(DataSpec(source="synthetic:sequence_count", n_samples=3000), seed=4)
    assert raw.x.dtype == np.int64 and raw.x.shape == (3000, 30)  # the example task's length 30
    assert np.array_equal((raw.x == 1).sum(1), raw.y)
    counts = np.bincount(raw.y)
    assert len(counts) == 10 and raw.meta["n_classes"] == 10  # classes 0-9
    assert counts.max() / len(raw.y) < 0.13  # ~uniform: majority guessing scores ~0.1
    assert raw.x.min() >= 0 and raw.x.max() < raw.meta["vocab_size"] == 10


def test_compare_task_asks_whether_a_occurs_more_often_than_b() -> None:
    raw = load_source(DataSpec(source="synthetic:sequence_compare", n_samples=3000), seed=4)
    a, b = (raw.x == 1).sum(1), (raw.x == 2).sum(1)
    assert not (a == b).any()  # no ties: every sequence has an answer
    assert np.array_equal((a > b).astype(np.int64), raw.y)
    assert abs(raw.y.mean() - 0.5) < 0.03
    assert (np.abs(a - b) == 1).mean() > 0.15  # close calls: the model must really count


@pytest.mark.parametrize("kind", ["sequence_count", "sequence_compare"])
def test_token_tasks_are_seeded(kind: str) -> None:
    spec = DataSpec(source=f"synthetic:{kind}", n_samples=100, options={"length": 20})
    a, b, c = (load_source(spec, s) for s in (1, 1, 2))
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    assert a.x.shape == (100, 20)


def test_place_tokens_puts_exact_counts() -> None:
    rng = np.random.default_rng(0)
    counts = np.array([[0, 0], [5, 2], [3, 4]])
    x = place_tokens(rng, counts, (7, 3), 9, 8)
    assert [int((r == 7).sum()) for r in x] == [0, 5, 3]
    assert [int((r == 3).sum()) for r in x] == [0, 2, 4]


def test_token_task_options_are_validated_together() -> None:
    spec = DataSpec(
        source="synthetic:sequence_compare",
        n_samples=10,
        options={"vocab_size": 2, "token_b": 1, "length": 10},
    )
    with pytest.raises(DataError) as e:
        load_source(spec, 0)
    messages = [p.message for p in e.value.problems]
    assert "token_b must differ from token_a" in messages
    assert "the marked tokens do not fit the sequence" in messages  # 2 x 9 > 10
    assert "no filler token is left besides the marked ones" in messages
    with pytest.raises(DataError, match="length must be a non-negative integer"):
        load_source(spec.model_copy(update={"options": {"length": "30"}}), 0)
    with pytest.raises(DataError, match="has no option 'lenght'; did you mean 'length'"):
        load_source(spec.model_copy(update={"options": {"lenght": 30}}), 0)


# ---- data preparation ----


def test_embedding_model_gets_int64_tokens_never_standardised(tmp_path: Path) -> None:
    bundle = prepare_data(_token_spec(tmp_path))
    assert bundle.train.x.dtype == torch.int64 and bundle.train.x.shape[1:] == (12,)
    assert bundle.info.tokens and bundle.info.x_mean is None and bundle.info.x_std is None
    raw = load_source(_token_spec(tmp_path).data, 0)
    assert set(bundle.train.x.unique().tolist()) <= set(np.unique(raw.x).tolist())
    assert bundle.info.n_outputs == 5


def test_float_model_on_float_data_is_unchanged(tmp_path: Path) -> None:
    bundle = prepare_data(tiny(tmp_path))
    assert bundle.train.x.dtype == torch.float32 and not bundle.info.tokens
    assert bundle.info.x_mean is not None


def test_token_ids_beyond_the_embedding_name_the_layer_and_the_max_token(tmp_path: Path) -> None:
    small = {**EMBED, "num_embeddings": 6}
    spec = _token_spec(tmp_path, model={"layers": [small, {"gru": 8}, {"linear": 5}]})
    with pytest.raises(DataError) as e:
        prepare_data(spec)
    (p,) = e.value.problems
    assert p.path == ("model", "layers", 0, "num_embeddings")
    assert p.message == (
        "token ids do not fit model.layers.0 (embedding, num_embeddings 6): max token found 9"
    )
    assert (p.expected, p.found) == ("token ids 0..5", "max token 9")
    assert p.fix == "set num_embeddings: 10 (the vocabulary size) or more"


def test_declared_vocabulary_is_checked_even_if_the_sample_misses_top_ids(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 10, size=(50, 12))
    raw = RawData(x, np.arange(50) % 5, meta={"vocab_size": 40})
    with pytest.raises(DataError) as e:
        prepare_data(_token_spec(tmp_path), raw=raw)
    (p,) = e.value.problems
    assert p.message == (
        "token ids do not fit model.layers.0 (embedding, num_embeddings 10): max token found 9; "
        "the source's vocabulary has 40 ids"
    )
    assert p.fix == "set num_embeddings: 40 (the vocabulary size) or more"


def test_embedding_inside_a_block_is_found_and_checked(tmp_path: Path) -> None:
    model = {
        "input_shape": [12],
        "blocks": {"stem": {"layers": [{**EMBED, "num_embeddings": 4}]}},
        "layers": [{"block": "stem"}, {"gru": 8}, {"linear": 5}],
    }
    spec = _token_spec(tmp_path, model=model)
    ((path, layer),) = input_embeddings(spec.model)
    assert path == ("model", "blocks", "stem", "layers", 0) and layer.num_embeddings == 4
    with pytest.raises(DataError, match="max token found 9"):
        prepare_data(spec)


def test_user_token_arrays_keep_their_dtype_and_fractions_are_refused(tmp_path: Path) -> None:
    spec = _token_spec(tmp_path, data={"source": "user"})
    x = np.random.default_rng(0).integers(0, 10, size=(60, 12)).astype(np.int32)
    y = np.arange(60) % 5
    assert user_data((x, y)).x.dtype == np.int32
    assert prepare_data(spec, raw=user_data((x, y))).train.x.dtype == torch.int64
    assert prepare_data(spec, raw=RawData(x.astype(np.float32), y)).train.x.dtype == torch.int64
    frac = x.astype(np.float32)
    frac[3, 2] = 2.5
    with pytest.raises(DataError) as e:
        prepare_data(spec, raw=RawData(frac, y))
    assert e.value.problems[0].found == "2.5 (sample 3, position 2)"
    with pytest.raises(DataError, match="token ids must not be negative"):
        prepare_data(spec, raw=RawData(x - 1, y))


def test_token_source_without_an_embedding_is_a_clear_error(tmp_path: Path) -> None:
    spec = _token_spec(tmp_path, model={"layers": [{"linear": 8}, {"linear": 5}]})
    with pytest.raises(DataError) as e:
        prepare_data(spec)
    p = e.value.problems[0]
    assert p.path == ("model", "layers", 0) and p.found == "linear first"
    assert "produces integer token ids (vocabulary 10)" in p.message
    assert p.fix == "start the layers with {kind: embedding, num_embeddings: 10, embedding_dim: 32}"


def test_token_array_accepts_whole_floats_and_empty_input() -> None:
    model = ModelSpec(input_shape=(3,), layers=[EMBED, {"sequence_pool": "mean"}])
    emb = input_embeddings(model)
    assert token_array(np.array([[0.0, 9.0, 3.0]]), emb).dtype == np.int64
    assert token_array(np.zeros((0, 3)), emb).shape == (0, 3)


# ---- training, prediction, eval, checks ----


def test_token_model_trains_predicts_and_evaluates(tmp_path: Path) -> None:
    from nnspec.run.predict import evaluate_run

    result = nnspec.train(_token_spec(tmp_path))
    assert 0.0 <= result.test_metrics["accuracy"] <= 1.0
    predictor = nnspec.load_run(result.run_dir)
    assert predictor.info.tokens
    x = np.zeros((4, 12), dtype=np.int64)
    assert predictor.predict_proba(x).shape == (4, 5)
    assert predictor.predict(x.astype(np.float64)).shape == (4,)  # whole floats are ids too
    evaluated = evaluate_run(result.run_dir)
    assert evaluated["accuracy"] == pytest.approx(result.test_metrics["accuracy"])
    with pytest.raises(DataError, match="max token found 12"):
        predictor.predict(np.full((1, 12), 12))
    csv_file = tmp_path / "tokens.csv"
    csv_file.write_text(",".join(f"t{i}" for i in range(12)) + "\n" + ",".join(["1"] * 12) + "\n")
    assert predictor.predict(csv_file).shape == (1,)  # CSV cells parse as floats, then ids


def test_dataloader_path_gives_the_same_token_model(tmp_path: Path) -> None:
    sliced = nnspec.train(_token_spec(tmp_path / "a"))
    loader = nnspec.train(_token_spec(tmp_path / "b", data={"in_memory": "no"}))
    a = torch.load(sliced.run_dir / "model.pt", weights_only=True)["model"]
    b = torch.load(loader.run_dir / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checks_run_on_token_inputs(tmp_path: Path) -> None:
    from nnspec.check import run_checks

    report = run_checks(_token_spec(tmp_path), only=["init-loss", "batch-independence"])
    assert report["batch-independence"].status == "pass"
    assert report["init-loss"].status in ("pass", "warn")


def test_input_probe_sees_batch_mixing_after_an_embedding() -> None:
    class Mixing(torch.nn.Module):  # subtracts the batch mean: sample outputs leak
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(5, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            e = self.emb(x).sum(1)
            return e - e.mean(0)

    model = Mixing()
    with input_probe(model, torch.randint(0, 5, (4, 6))) as probe:
        out = model(probe.x)
    assert probe.leaf is not None and probe.leaf.shape == (4, 6, 3)
    (g,) = torch.autograd.grad(out[0].sum(), probe.leaf)
    assert g[1:].abs().max() > 0  # sample 0 depends on samples 1..3
    assert not model.emb._forward_hooks  # hooks removed


def test_lr_find_runs_on_token_inputs(tmp_path: Path) -> None:
    from nnspec.check import lr_find

    result = lr_find(_token_spec(tmp_path), steps=8)
    assert result.suggested_lr > 0


# ---- model input_shape vs data ----


def test_digits_cnn_on_wine_names_input_shape_and_the_data_shape(tmp_path: Path) -> None:
    spec = nnspec.load(Path(__file__).resolve().parents[2] / "examples" / "digits_cnn.yaml")
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"source": "sklearn:wine"})})
    with pytest.raises(DataError) as e:
        prepare_data(spec)
    (p,) = e.value.problems
    assert p.path == ("model", "input_shape")
    assert p.message == "input_shape does not fit the data: sklearn:wine has 13 values per sample"
    assert p.expected == "[13] (the per-sample shape of the data)"
    assert p.found == "[1, 8, 8] = 64 values"
    assert p.fix == (
        "set model.input_shape: [13] and adapt the layers to it, or choose a model made for "
        "this data"
    )


def test_nnspec_train_data_wine_fails_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nnspec.cli.train import main as run

    monkeypatch.chdir(tmp_path)
    code = run(["data=wine", "hydra.run.dir=out", f"train.output_dir={tmp_path / 'runs'}"])
    assert code != 0
    err = capsys.readouterr().err
    assert "model.input_shape: input_shape does not fit the data" in err
    assert "fix: set model.input_shape: [13]" in err
    assert not (tmp_path / "runs").exists()  # nothing written for the run
