"""Hand-written half of docs/rules.md: each cited rule id, in our words, and what nnspec does.

``RULES[id] = (rule, action)``: ``rule`` says what the practice is and why, in one sentence;
``action`` says what nnspec does about it (a default, a validation, a check, a monitor, or only
guidance). The lint findings and the ``init: auto`` table are not repeated here: ``rules_doc.py``
reads them from nnspec and appends them to the action. ``SECTIONS`` orders the page by the id
prefixes of the design-rule catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

SECTIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "PROC": "Process",
        "DATA": "Data",
        "ARCH": "Architecture",
        "ACT": "Hidden activations",
        "OUT": "Output layer",
        "LOSS": "Losses",
        "INIT": "Initialisation",
        "NORM": "Normalisation",
        "REG": "Regularisation",
        "OPT": "Optimizers",
        "LR": "Learning rate and schedules",
        "TRAIN": "Training loop",
        "REPRO": "Reproducibility",
        "CKPT": "Checkpoints",
        "CHECK": "Sanity checks",
        "MON": "Monitoring",
        "HPO": "Hyper-parameter search",
        "ENS": "Ensembles and the last bit",
        "CONF": "Settled disagreements",
    }
)

RULES: Final[Mapping[str, tuple[str, str]]] = MappingProxyType({
    # ---- process ----
    "PROC-1": (
        "Begin with a deliberately small model: it proves the data and loss are wired correctly "
        "and sets a floor to beat.",
        "Guidance: the tabular examples (`examples/iris_mlp.yaml`, ...) are baseline-sized MLPs.",
    ),
    # ---- data ----
    "DATA-1": (
        "Look at the data before modelling: balance, duplicates, broken items, outliers.",
        "Loading the data refuses a cell that is not a number (NaN included), naming its column "
        "and row.",
    ),
    "DATA-4": (
        "Inputs should be centred and of comparable scale; badly scaled inputs are a common cause "
        "of vanishing or exploding gradients.",
        "Default `data.standardize: true`.",
    ),
    "DATA-5": (
        "Normalisation statistics come from the training split only and are reused unchanged on "
        "validation, test and new data.",
        "Default: standardisation is fitted on the training split (constant features keep std 1) "
        "and saved with the run for `nnspec predict`.",
    ),
    "DATA-7": (
        "Hold out validation and test data; 70 / 20 / 10 is a sensible default split.",
        "Default `data.split: {train: 0.7, val: 0.2, test: 0.1}`, shuffled, seeded and stratified "
        "for classification. Validation: a monitored `val_*` metric with an empty validation "
        "split is refused.",
    ),
    "DATA-8": (
        "Shuffle the samples, within splits and again every epoch.",
        "Default `data.shuffle: true` (a new order each epoch, from the seed).",
    ),
    "DATA-10": (
        "Augment the training data (random crops, flips, rotations, colour jitter): the most "
        "effective regulariser; the training split only.",
        "`data.augment` (off by default) transforms training batches only, drawn from (seed, "
        "epoch, batch); validation, test and `nnspec predict` never see it. Validation: an "
        "augmentation the input shape cannot take is refused.",
    ),
    "DATA-14": (
        "Pick established, human-readable metrics for the task up front and watch them besides "
        "the loss.",
        "Default: each task logs its metrics (accuracy, F1, AUROC, MAE, RMSE, R², ...) as "
        "`val_<name>` every epoch and `test_<name>` at the end.",
    ),
    # ---- architecture ----
    "ARCH-1": (
        "The output width follows from the task: one unit per class, one logit for binary, one "
        "per regression target.",
        "Validation: before training, a head whose width does not fit the data is refused.",
    ),
    "ARCH-6": (
        "A model that is too small underfits: the training loss stays high.",
        "Monitor: the end-of-run fit diagnosis reports underfitting and suggests more capacity, "
        "a better learning rate or longer training.",
    ),
    "ARCH-9": (
        "Deep networks need skip connections (and normalisation) to stay trainable.",
        "Layer kinds `residual` and `add`.",
    ),
    "ARCH-10": (
        "Attention lets a model weight the important parts of its input (self-attention, "
        "squeeze-and-excitation).",
        "Layer kinds `squeeze_excitation` and the transformer layers.",
    ),
    "ARCH-11": (
        "Global average pooling replaces large fully connected heads on top of convolutions.",
        "Layer kind `adaptive_avg_pool2d` (used by the ResNet examples).",
    ),
    # ---- activations ----
    "ACT-1": (
        "ReLU (or a variant) is the default hidden activation: cheap, and no saturation.",
        "Default `model.defaults.activation: relu`.",
    ),
    "ACT-2": (
        "Sigmoid and tanh are the weakest hidden activations; in deep stacks they saturate.",
        "",
    ),
    "ACT-4": (
        "Leaky ReLU has a small fixed negative slope; PReLU learns it.",
        "Default `negative_slope: 0.01`; PReLU has one learnt slope per layer or per channel "
        "(`num_parameters`); the slope feeds the He scale.",
    ),
    "ACT-7": (
        "SELU self-normalises only with LeCun init and AlphaDropout (and standardised inputs).",
        "Default: `init: auto` gives LeCun and dropout becomes AlphaDropout after SELU.",
    ),
    # ---- output layer ----
    "OUT-1": (
        "A regression head is linear, so it can produce any real value.",
        "Default: the head's activation is identity.",
    ),
    "OUT-3": (
        "Binary classification uses one output unit whose sigmoid is the positive probability.",
        "Default: one logit with `bce_with_logits`; the sigmoid is applied only at inference. "
        "Validation: a sigmoid head in front of a logit loss is refused.",
    ),
    "OUT-4": (
        "Multi-class classification uses one unit per class and a softmax.",
        "Default: C logits with `cross_entropy`; the softmax is applied only at inference. "
        "Validation: a softmax head in front of a logit loss is refused.",
    ),
    "OUT-5": (
        "Never put dropout on the output layer: it zeroes predictions at random.",
        "Validation: a dropout layer as the last layer is refused.",
    ),
    # ---- losses ----
    "LOSS-1": (
        "The loss states the objective, so it must fit the task.",
        "Validation: a loss that does not fit the task (e.g. `mse` for classification) is refused "
        "with the losses that do.",
    ),
    "LOSS-2": (
        "Classification trains with cross-entropy.",
        "Default `loss: auto`: `cross_entropy` for classes, `bce_with_logits` for binary and "
        "multilabel.",
    ),
    "LOSS-3": (
        "Regression trains with MSE; MAE or Huber when outliers dominate.",
        "Default `loss: auto`: `mse`; `mae`, `huber` and `smooth_l1` are available.",
    ),
    "LOSS-6": (
        "Compute losses in a numerically safe way (log space, no bare division).",
        "Default: every classification loss takes raw logits, so torch's fused log-sum-exp does "
        "the work.",
    ),
    # ---- initialisation ----
    "INIT-1": (
        "The weight initialisation is chosen by the activation that follows the layer.",
        "`init: auto` resolves through one table (`nnspec.compile.DEFAULT_INIT`); `nnspec "
        "summary` shows each layer's rule and why.",
    ),
    "INIT-2": (
        "He (Kaiming): variance 2 / fan_in for the ReLU family, 2 / ((1 + a²) fan_in) for a "
        "leaky slope a.",
        "Presets `he_normal`, `he_uniform`, `he_truncated_normal`.",
    ),
    "INIT-3": (
        "LeCun: variance 1 / fan_in, for SELU and ELU.",
        "Presets `lecun_normal`, `lecun_uniform`, `lecun_truncated_normal`.",
    ),
    "INIT-4": (
        "Glorot (Xavier): variance 2 / (fan_in + fan_out), for sigmoid, tanh, softmax and "
        "linear outputs.",
        "Presets `glorot_*`; attention projections and the second squeeze-and-excitation layer "
        "use Glorot too.",
    ),
    "INIT-5": (
        "Normal, truncated-normal and uniform draws of one scheme have the same variance.",
        "One rule type `variance_scaling(scale, mode, distribution)`; the truncated normal is "
        "widened so its variance is the target.",
    ),
    "INIT-6": (
        "Weights must start random to break symmetry; all-equal weights train as one unit.",
        "Validation: `zeros` or a constant init on a hidden weight layer or an embedding is "
        "refused.",
    ),
    "INIT-7": (
        "For regression, start the output bias at the target mean, so the first steps do not "
        "just learn the offset.",
        "Default in `nnspec train`: the head bias is set to the training targets' mean (median "
        "for an L1 loss).",
    ),
    "INIT-8": (
        "For classification, start the output bias at the log class prior, so the initial "
        "predictions match the class frequencies.",
        "Default in `nnspec train`: the head bias is set from the training labels.",
    ),
    "INIT-9": (
        "Scale the last layer down so the initial outputs are nearly constant and the initial "
        "loss is its analytic value.",
        "Default: the head is Glorot x 0.1 unless the layer sets its own init.",
    ),
    "INIT-10": (
        "Compute fans from the tensor's own layout, never by hand (torch stores (out, in)).",
        "Default: fans come from the weight's shape (fan_in = shape[1] x receptive field).",
    ),
    "INIT-11": (
        "Apply the chosen init explicitly: torch's default matches none of the schemes.",
        "Default: every parameter of a built-in layer is overwritten after construction; "
        "`model.init_records` says which rule set each one.",
    ),
    # ---- normalisation ----
    "NORM-2": (
        "Place the norm between the weight op and the activation: op → norm → activation.",
        "Default order of every weight layer: op → norm → activation → dropout; the bias is "
        "dropped when batch norm follows.",
    ),
    "NORM-3": (
        "Use LayerNorm, not BatchNorm, in recurrent and attention models.",
        "Layer kind `layer_norm`; the transformer layers use LayerNorm (`examples/seq_lstm.yaml`).",
    ),
    "NORM-5": (
        "Batch norm's statistics are unreliable on tiny batches.",
        "",
    ),
    "NORM-6": (
        "Dropout right before batch norm shifts the variance batch norm sees between training and "
        "inference.",
        "",
    ),
    # ---- regularisation ----
    "REG-2": (
        "Fight overfitting in order: more data, augmentation, smaller model, dropout, weight "
        "decay, early stopping.",
        "Monitor: the end-of-run fit diagnosis lists the remedies in this order.",
    ),
    "REG-4": (
        "Useful dropout rates lie between 0.1 and 0.5.",
        "",
    ),
    "REG-5": (
        "After convolutions, drop whole channels (spatial dropout).",
        "Default: dropout after a conv layer becomes Dropout1d/Dropout2d.",
    ),
    "REG-6": (
        "Use AlphaDropout with SELU: it keeps the mean and variance SELU relies on.",
        "Default: dropout after SELU becomes AlphaDropout.",
    ),
    "REG-8": (
        "L2 regularisation (weight decay) keeps weights small; decaying biases and norm "
        "parameters only hurts.",
        "Option `optim.weight_decay` (AdamW default 0.01); biases and norm parameters are left "
        "out unless `decay_norm_and_bias: true`. The `sweep=lr_wd` preset searches it.",
    ),
    "REG-9": (
        "L1 regularisation drives weights to zero (sparsity).",
        "Option `optim.l1` adds the penalty on weight matrices and kernels to the loss.",
    ),
    # ---- optimizers ----
    "OPT-1": (
        "AdamW is a robust default optimizer.",
        "Default `optim.kind: adamw`.",
    ),
    "OPT-2": (
        "Adam's defaults (β 0.9 / 0.999, ε 1e-8) usually work; tune the learning rate first.",
        "Default `betas: [0.9, 0.999]`, `eps: 1e-8`.",
    ),
    "OPT-3": (
        "Adam(W) at a safe learning rate is the baseline; the learning rate matters most.",
        "The `sweep=lr_wd` preset searches learning rate and weight decay with the Optuna "
        "sweeper.",
    ),
    "OPT-4": (
        "Well-tuned SGD with momentum often ends best; plain SGD is slow.",
        "Default SGD `momentum: 0.9`.",
    ),
    "OPT-7": (
        "Momentum should be close to 1, 0.9 being a good start.",
        "Default SGD `momentum: 0.9`.",
    ),
    "OPT-8": (
        "Nesterov momentum evaluates the gradient at the look-ahead point.",
        "Option `nesterov`; validation: it needs `momentum > 0` and `dampening: 0` (torch would "
        "raise later).",
    ),
    "OPT-9": (
        "Adam's weight decay is coupled L2 that its adaptive scaling distorts; AdamW decouples it.",
        "Default AdamW with `weight_decay: 0.01`.",
    ),
    # ---- learning rate ----
    "LR-1": (
        "A learning rate too high makes the loss bounce or diverge; too low makes it crawl.",
        "Monitor: a training loss rising several evaluations in a row is reported; the divergence "
        "guard stops a run whose loss explodes, with advice.",
    ),
    "LR-3": (
        "The LR range test sweeps the rate geometrically over a few batches and records the loss.",
        "`nnspec lr-find SPEC`, and `optim.lr: auto` runs it before training.",
    ),
    "LR-4": (
        "Read the range-test curve at the steepest descent, or about half the diverging rate.",
        "Suggestion: the smaller of the steepest-descent rate and half the divergence rate.",
    ),
    "LR-5": (
        "Schedule the learning rate rather than keep one value.",
        "`schedule.kind`: constant, step, multistep, exponential, cosine (with restarts), "
        "one_cycle, reduce_on_plateau.",
    ),
    "LR-6": (
        "Warm the learning rate up from a small value to stabilise the first steps.",
        "Option `schedule.warmup` (linear), in epochs or as a fraction of the run.",
    ),
    "LR-7": (
        "The one-cycle policy raises and then lowers the rate within one run.",
        "`schedule.kind: one_cycle`; validation: a separate warmup in front of it is refused (it "
        "has its own).",
    ),
    "LR-8": (
        "Reduce the rate when the monitored metric stops improving.",
        "`schedule.kind: reduce_on_plateau`.",
    ),
    "LR-9": (
        "Keep the rate constant while tuning everything else; add decay at the end.",
        "Default `schedule.kind: constant`.",
    ),
    "LR-10": (
        "Decay milestones copied from another dataset can drive the rate to zero too early.",
        "`multistep` milestones are fractions of the whole run, so they always fall inside it.",
    ),
    # ---- training ----
    "TRAIN-1": (
        "Start with small batches, which generalise well, and grow them while monitoring.",
        "Default `data.batch_size: 64`.",
    ),
    "TRAIN-3": (
        "Give a generous epoch budget and let early stopping end training.",
        "Default `train.epochs: 30` with early stopping on.",
    ),
    "TRAIN-4": (
        "Stop when the validation metric stops improving and keep the best model.",
        "Default early stopping on `val_loss`, patience 10, best weights restored; validation: "
        "unknown monitors and a mode contrary to the metric are refused.",
    ),
    "TRAIN-6": (
        "Clip gradients by their global norm (which keeps their direction), above all for "
        "recurrent and attention models.",
        "Default: models with recurrent or attention layers clip the global norm at 1.0 unless "
        "`train.clip_grad` is set.",
    ),
    "TRAIN-8": (
        "When fine-tuning, freeze the layers that hold generic features and retrain the rest.",
        "Option `trainable: false` on a layer: its tensors never reach the optimizer.",
    ),
    # ---- reproducibility and checkpoints ----
    "REPRO-1": (
        "Seed every random generator so runs can be compared.",
        "Default `seed: 0` seeds Python, NumPy and torch; `train.deterministic` turns on torch's "
        "deterministic algorithms.",
    ),
    "REPRO-3": (
        "Reproduce results from saved checkpoints rather than by retraining.",
        "`nnspec eval RUN_DIR` and `nnspec predict RUN_DIR` load the saved weights and "
        "preprocessing.",
    ),
    "CKPT-1": (
        "Checkpoint regularly, with everything needed to resume.",
        "Default: a checkpoint every epoch (weights, optimizer, RNG states, loadable with "
        "`weights_only=True`); `train.resume` continues bit for bit.",
    ),
    "CKPT-2": (
        "Tie each checkpoint to the model design that wrote it.",
        "Resuming from a checkpoint whose spec hash differs is refused, naming the "
        "differing fields.",
    ),
    "CKPT-3": (
        "Checkpoints take space; plan storage for them.",
        "Default `train.checkpoint.keep_last: 2` removes older ones.",
    ),
    "CKPT-4": (
        "Keep the best model seen so far.",
        "Default `train.checkpoint.keep_best: true` keeps it as `best.pt`.",
    ),
    # ---- checks ----
    "CHECK-1": (
        "A model must be able to memorise one tiny batch; if it cannot, something is broken.",
        "Check `overfit-batch`: a few samples per class to ≤ 1 % of the initial loss within 1000 "
        "steps, dropout and weight decay off.",
    ),
    "CHECK-2": (
        "The loss right after initialisation should equal its analytic value (ln C for C "
        "balanced classes).",
        "Check `init-loss`: within 0.1 nat (20 % for regression) of the constant prediction's "
        "loss.",
    ),
    "CHECK-3": (
        "A model trained on zeroed inputs must do clearly worse than on the real ones.",
        "Check `input-independent`: the real-input model must beat the zero-input copy by ≥ 2 %.",
    ),
    "CHECK-6": (
        "In evaluation, one sample's output must not depend on another sample's input.",
        "Check `batch-independence`: names the first layer that mixes samples.",
    ),
    # ---- monitoring ----
    "MON-1": (
        "Watch training and validation curves; the gap between them tells overfitting from "
        "underfitting.",
        "Monitor: loss and metric plots per run, and a fit diagnosis at the end of training.",
    ),
    "MON-2": (
        "Watch per-layer gradients to spot vanishing or exploding gradients.",
        "Monitor `train.monitors.grad_norms` and warnings (`warn`); check `gradient-flow`.",
    ),
    "MON-3": (
        "Watch activations for dead or saturated units.",
        "Monitor `train.monitors.dead_units`; check `gradient-flow` reports dead and saturated "
        "fractions.",
    ),
    "MON-5": (
        "Evaluate on whole splits, not on smoothed per-batch numbers.",
        "Default: validation and test metrics are computed over the whole split.",
    ),
    # ---- settled disagreements ----
    "CONF-20": (
        "Logit losses apply softmax/sigmoid themselves, so the model must output raw logits.",
        "Default: heads output logits and probabilities are computed at inference; validation "
        "refuses a double softmax/sigmoid.",
    ),
})  # fmt: skip
