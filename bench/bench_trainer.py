"""Side-by-side trainer benchmark: nnspec vs a minimal hand-written loop vs Lightning's defaults.

Run by hand (not part of the test suite)::

    .venv/bin/python bench/bench_trainer.py [--reps 5] [--threads 1] [--workloads W1,W2,W3]
    .venv/bin/python bench/bench_trainer.py --compare ../other-checkout --workloads W3 --reps 15 \
        [--epochs 10]

``--compare DIR`` times nnspec against another checkout of nnspec instead (before/after a
change): the same bench code runs this checkout's nnspec and ``DIR``'s (with ``DIR/.venv``'s
Python), in alternating fresh processes (A B, B A, A B, ...), and reports the medians of the
per-step times (``fit`` and its CPU time divided by the optimizer steps; nnspec's defaults, no
user callback) and of the per-round ratios.

Workloads:
  W1  MLP 64->256->256->10 on 50,000 x 64 synthetic samples, batch 256, 5 epochs
  W2  the digits CNN (examples/digits_cnn.yaml), batch 64, 20 epochs (its one-cycle schedule)
  W3  MLP 64->32->10 on 20,000 x 64 synthetic samples, batch 32, 3 epochs (per-step overhead)

Every variant trains the same model on the same tensors (nnspec's split and standardisation), in
the same batch order (nnspec's per-epoch permutation; Lightning shuffles with its own sampler),
with the same optimizer and parameter-group semantics (AdamW with weight decay on weight
matrices/kernels only, as nnspec's default REG-8 groups; ``fused=True``, the kernel nnspec picks
on CPU/CUDA), schedule and per-epoch validation (loss + accuracy). Variants run
interleaved (A B C A B C ...), each in a fresh process; every process reports

  fit    seconds in the epoch loop (training + per-epoch validation + whatever the framework does
         per epoch: nnspec's metric files, checkpoints and progress lines; Lightning's logger,
         checkpoint and progress bar)
  cpu    CPU seconds (all threads of the process: nnspec's writer thread counts) spent in the
         same span as fit; less sensitive than wall time to other jobs on a shared machine
  total  fit plus set-up and tear-down after imports and data generation (nnspec: model build,
         final test pass, summary, plots; hand loop: model build + test pass)

The table shows medians, ratios to the hand loop, and the noise of the machine (the spread
(max - min) / median of the hand loop's repeated runs). Lightning is optional (``pip install
lightning``, the ``bench`` extra); without it its column is skipped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def workload_spec(name: str, tmp: str) -> Any:
    """The nnspec spec of a workload (progress plain, metric files and checkpoints on: defaults)."""
    from nnspec.io import load
    from nnspec.spec import ExperimentSpec

    if name == "W2":
        spec = load(ROOT / "examples" / "digits_cnn.yaml")
        data = spec.model_dump(mode="json")
        data["data"]["batch_size"] = 64
        data["train"]["epochs"] = 20
    else:
        n, width, hidden, bs, epochs = {
            "W1": (50_000, 64, [256, 256], 256, 5),
            "W3": (20_000, 64, [32], 32, 3),
        }[name]
        data = {
            "name": name,
            "data": {
                "source": "synthetic:classification",
                "n_samples": n,
                "options": {"n_features": width, "n_informative": 32, "n_classes": 10},
                "batch_size": bs,
            },
            "model": {
                "input_shape": [width],
                "layers": [{"linear": h} for h in hidden] + [{"linear": 10}],
            },
            "optim": {"kind": "adamw", "lr": 1e-3, "weight_decay": 0.01},
            "train": {"epochs": epochs},
        }
    data["train"]["output_dir"] = tmp
    data["train"]["progress"] = "plain"
    data["train"].setdefault("early_stopping", {})["patience"] = 1000  # run every epoch
    return ExperimentSpec.model_validate(data)


def _optimizer(spec: Any, model: Any) -> Any:
    """AdamW as a careful user writes it: no decay on biases and norm parameters (2 groups)."""
    import torch

    o, params = spec.optim, list(model.parameters())
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": o.weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=o.lr, fused=True)


def _schedule(spec: Any, opt: Any, steps_per_epoch: int) -> Any:
    import torch

    if spec.schedule.kind == "one_cycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=spec.optim.lr, total_steps=steps_per_epoch * spec.train.epochs
        )
    return None


def run_nnspec(spec: Any, tmp: str) -> dict[str, float]:
    from nnspec.run import loop

    try:
        from nnspec.workflow import train
    except ImportError:  # a checkout from before nnspec.workflow (--compare)
        from nnspec.run import train  # type: ignore[attr-defined,no-redef]

    cpu: list[float] = []
    fit = loop.Trainer.fit

    def timed_fit(self: Any) -> Any:  # CPU time of the epoch loop (fit_time's span)
        c0 = time.process_time()
        try:
            return fit(self)
        finally:
            cpu.append(time.process_time() - c0)

    loop.Trainer.fit = timed_fit  # type: ignore[method-assign]
    t0 = time.perf_counter()
    result = train(spec, run_dir=Path(tmp) / "run")
    total = time.perf_counter() - t0
    summary = json.loads((result.run_dir / "summary.json").read_text())
    acc = result.test_metrics["accuracy"]
    fit_time, steps = summary["fit_time"], summary["steps"]
    return {
        "fit": fit_time, "cpu": cpu[0], "total": total, "acc": acc,
        "step": fit_time / steps, "cpu_step": cpu[0] / steps,
    }  # fmt: skip


def run_hand(spec: Any, tmp: str) -> dict[str, float]:
    """A minimal loop with tensor slicing: what a careful user writes by hand."""
    import torch
    import torch.nn.functional as F

    from nnspec.compile import build_model
    from nnspec.run.data import epoch_order, prepare_data

    t0 = time.perf_counter()
    b = prepare_data(spec)
    model = build_model(spec.model, generator=torch.Generator().manual_seed(spec.seed))
    opt = _optimizer(spec, model)
    bs, n = spec.data.batch_size, len(b.train)
    spe = n // bs + (1 if n % bs > 1 else 0)
    sched = _schedule(spec, opt, spe)
    t1, c1 = time.perf_counter(), time.process_time()
    for epoch in range(1, spec.train.epochs + 1):
        model.train()
        perm = epoch_order(spec.seed, epoch, n)
        xs, ys = b.train.x[perm], b.train.y[perm]
        stop = n - 1 if n % bs == 1 else n
        for i in range(0, stop, bs):
            loss = F.cross_entropy(model(xs[i : i + bs]), ys[i : i + bs])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
        model.eval()
        with torch.inference_mode():
            out = model(b.val.x)
            val_loss = F.cross_entropy(out, b.val.y).item()
            val_acc = (out.argmax(1) == b.val.y).float().mean().item()
        print(f"epoch {epoch} val_loss {val_loss:.4f} val_acc {val_acc:.4f}", flush=True)
    fit, cpu = time.perf_counter() - t1, time.process_time() - c1
    with torch.inference_mode():
        acc = (model(b.test.x).argmax(1) == b.test.y).float().mean().item()
    return {"fit": fit, "cpu": cpu, "total": time.perf_counter() - t0, "acc": acc}


def run_lightning(spec: Any, tmp: str) -> dict[str, float]:
    """PyTorch Lightning's Trainer with its defaults (progress bar, logger, checkpointing)."""
    import lightning as L
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from nnspec.compile import build_model
    from nnspec.run.data import prepare_data

    t0 = time.perf_counter()
    b = prepare_data(spec)
    net = build_model(spec.model, generator=torch.Generator().manual_seed(spec.seed))
    bs, n = spec.data.batch_size, len(b.train)
    spe = -(-n // bs)

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def training_step(self, batch: Any, _: int) -> Any:
            x, y = batch
            return F.cross_entropy(self.net(x), y)

        def validation_step(self, batch: Any, _: int) -> None:
            x, y = batch
            out = self.net(x)
            self.log("val_loss", F.cross_entropy(out, y))
            self.log("val_acc", (out.argmax(1) == y).float().mean())

        def configure_optimizers(self) -> Any:
            opt = _optimizer(spec, self.net)
            sched = _schedule(spec, opt, spe)
            if sched is None:
                return opt
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    train_dl = DataLoader(TensorDataset(b.train.x, b.train.y), batch_size=bs, shuffle=True)
    val_dl = DataLoader(TensorDataset(b.val.x, b.val.y), batch_size=spec.data.eval_batch_size)
    trainer = L.Trainer(max_epochs=spec.train.epochs, default_root_dir=tmp, accelerator="cpu")
    module = Module()
    t1, c1 = time.perf_counter(), time.process_time()
    trainer.fit(module, train_dl, val_dl)
    fit, cpu = time.perf_counter() - t1, time.process_time() - c1
    with torch.inference_mode():
        net.eval()
        acc = (net(b.test.x).argmax(1) == b.test.y).float().mean().item()
    return {"fit": fit, "cpu": cpu, "total": time.perf_counter() - t0, "acc": acc}


VARIANTS = {"nnspec": run_nnspec, "hand": run_hand, "lightning": run_lightning}


def child(workload: str, variant: str, threads: int, epochs: int | None = None) -> None:
    import warnings

    import torch

    warnings.filterwarnings("ignore")  # Lightning's advice lines are not results
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        spec = workload_spec(workload, tmp)
        if epochs is not None:  # --epochs: a longer fit, for a steadier per-step figure
            spec = spec.model_copy(
                update={"train": spec.train.model_copy(update={"epochs": epochs})}
            )
        result = VARIANTS[variant](spec, tmp)
    print("RESULT " + json.dumps(result), flush=True)


def _spawn(
    workload: str, variant: str, threads: int, checkout: Path = ROOT, epochs: int | None = None
) -> dict[str, float]:
    """One fresh process; ``checkout``: whose nnspec it imports (its ``.venv``'s Python)."""
    python = sys.executable if checkout == ROOT else str(checkout / ".venv" / "bin" / "python")
    cmd = [python, __file__, "--child", workload, variant, "--threads", str(threads)]
    cmd += ["--epochs", str(epochs)] if epochs is not None else []
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=checkout)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{workload}/{variant} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workloads", default="W1,W2,W3")
    ap.add_argument("--variants", default="nnspec,hand,lightning", help="hand is always run")
    ap.add_argument("--child", nargs=2, metavar=("WORKLOAD", "VARIANT"))
    ap.add_argument("--compare", type=Path, metavar="DIR", help="another checkout of nnspec")
    ap.add_argument("--epochs", type=int, help="override the workloads' epochs (--compare)")
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.threads, args.epochs)
        return
    if args.compare is not None:
        for wl in args.workloads.split(","):
            compare(wl, args.compare.resolve(), args.reps, args.threads, args.epochs)
        return
    try:
        import lightning  # noqa: F401

        variants = ["nnspec", "hand", "lightning"]
    except ImportError:
        print("lightning is not installed: its column is skipped (pip install lightning)")
        variants = ["nnspec", "hand"]
    wanted = set(args.variants.split(",")) | {"hand"}
    variants = [v for v in variants if v in wanted]
    for wl in args.workloads.split(","):
        runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        for _ in range(args.reps):
            for v in variants:  # interleaved: A B C A B C
                runs[v].append(_spawn(wl, v, args.threads))
        report(wl, runs)


def report(workload: str, runs: dict[str, list[dict[str, float]]]) -> None:
    keys = ("fit", "cpu", "total", "acc")
    med = {v: {k: statistics.median(r[k] for r in rs) for k in keys} for v, rs in runs.items()}
    hand_fit = [r["fit"] for r in runs["hand"]]
    noise = (max(hand_fit) - min(hand_fit)) / statistics.median(hand_fit)
    print(f"\n{workload}  ({len(hand_fit)} runs each; hand-loop fit spread {noise:.0%})")
    cols = (
        f"{'fit s':>8} {'fit/hand':>9} {'cpu s':>8} {'cpu/hand':>9} {'total s':>8} "
        f"{'total/hand':>11} {'test acc':>9}"
    )
    print(f"  {'variant':<10} {cols}")
    h = med["hand"]
    for v, m in med.items():
        print(
            f"  {v:<10} {m['fit']:8.3f} {m['fit'] / h['fit']:8.2f}x {m['cpu']:8.3f} "
            f"{m['cpu'] / h['cpu']:8.2f}x {m['total']:8.3f} {m['total'] / h['total']:10.2f}x "
            f"{m['acc']:9.4f}"
        )
    # per-run ratios against the hand run of the same round (interleaved): a paired statistic
    for v in runs:
        if v != "hand":
            paired = [a["fit"] / b["fit"] for a, b in zip(runs[v], runs["hand"], strict=True)]
            print(f"  {v} / hand, per round (fit): " + " ".join(f"{r:.2f}" for r in paired))
    sys.stdout.flush()


def compare(workload: str, other: Path, reps: int, threads: int, epochs: int | None) -> None:
    """This checkout's nnspec vs ``other``'s, alternating which one runs first in each round."""
    runs: dict[str, list[dict[str, float]]] = {"this": [], "other": []}
    for i in range(reps):
        order = [("this", ROOT), ("other", other)]
        for name, checkout in order if i % 2 == 0 else order[::-1]:
            runs[name].append(_spawn(workload, "nnspec", threads, checkout, epochs))
    print(f"\n{workload}  this={ROOT}  other={other}  ({reps} rounds, {threads} thread(s))")
    for key in ("step", "cpu_step", "fit", "cpu"):
        a = [r[key] for r in runs["this"]]
        b = [r[key] for r in runs["other"]]
        paired = [x / y for x, y in zip(a, b, strict=True)]
        unit, scale = ("us", 1e6) if key.endswith("step") else ("s", 1.0)
        print(
            f"  {key:<8} median this {statistics.median(a) * scale:9.2f} {unit}  other "
            f"{statistics.median(b) * scale:9.2f} {unit}  ratio of medians "
            f"{statistics.median(a) / statistics.median(b):.4f}  median paired ratio "
            f"{statistics.median(paired):.4f}"
        )
    paired = [x["step"] / y["step"] for x, y in zip(runs["this"], runs["other"], strict=True)]
    print("  per-round step ratios: " + " ".join(f"{r:.3f}" for r in paired))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
