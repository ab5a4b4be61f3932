"""Run configurations as dataclasses. YAML in, unknown keys rejected, every knob visible.

A config file mirrors these classes one to one; `to_dict` is what gets recorded beside results (config_io.py:
the checker, YAML and the recording rules).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from i2i_unlearn import shipped
from i2i_unlearn.config_io import (  # noqa: F401  (the checker lives there; config users import it from here)
    BUDGET_KEY, RECORDED_ONLY_WITH, RECORDED_WHEN_SET, WHEN_SET_KEY, field_help, from_dict, knob, load_yaml,
    read_yaml, to_dict, with_overrides)
from i2i_unlearn.errors import UserError


@dataclass
class DataConfig:
    dataset: str = "animal-mnist"     # a name from `i2i-unlearn list datasets`
    root: str | None = None           # folder for fashion-mnist IDX files, an image folder or a saved HF dataset
    image_size: int = 32              # 28px datasets are zero-padded, folders are resized
    channels: int = 1                 # 1 = grey, 3 = RGB (image folders are converted)
    test_per_class: int = 100         # held-out test images per class, never seen by training or unlearning
    val_per_class: int = 50           # validation images per class (knobs are chosen on them), never trained on
    split_seed: int = 0               # the train/validation/test split depends only on this seed
    # The split rule (data/splits.py). None or "permutation": per class a seeded permutation cut by the counts above,
    # the split every recorded model used (a record without this key means it). "hashed": each image by a hash of
    # split_seed and its id against the two fractions below (the counts are unused), so it needs no pixels and an
    # image added to the folder never moves another between parts. Recorded only when set.
    split: str | None = field(default=None, metadata=WHEN_SET_KEY)
    test_fraction: float | None = field(default=None, metadata=WHEN_SET_KEY)   # hashed: share of each class in test
    val_fraction: float | None = field(default=None, metadata=WHEN_SET_KEY)    # hashed: share in validation

    def __post_init__(self):
        if self.split not in SPLIT_RULES:
            raise UserError(f"data.split must be one of {', '.join(r for r in SPLIT_RULES if r)}, got {self.split!r}")
        fractions = (self.test_fraction, self.val_fraction)
        if self.split != "hashed":
            if any(f is not None for f in fractions):
                raise UserError("data.test_fraction and data.val_fraction belong to split: hashed (the permutation "
                                "split counts images per class: test_per_class, val_per_class)")
            return
        if any(f is None for f in fractions):
            raise UserError("split: hashed needs data.test_fraction and data.val_fraction (e.g. 0.1 and 0.05)")
        if not (0 < self.test_fraction and 0 <= self.val_fraction and self.test_fraction + self.val_fraction < 1):
            raise UserError(f"data.test_fraction must be > 0, data.val_fraction >= 0 and their sum < 1, got "
                            f"{self.test_fraction} and {self.val_fraction}")


SPLIT_RULES = (None, "permutation", "hashed")


def recorded_data_config(values: dict, where: str = " training.data") -> DataConfig:
    """The DataConfig a model folder recorded. Folders from before the validation split record
    no `val_per_class`: they had none, and keep loading with their own split."""
    return from_dict(DataConfig, {"val_per_class": 0, **values}, where)


@dataclass
class TaskConfig:
    name: str = "center-inpaint"      # center-inpaint | outpaint | random-patches
    ratio: float = 0.5                # hole side / visible side / hidden-patch fraction


@dataclass
class OptimConfig:
    optimizer: str = "adamw"          # adamw | adam
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.05
    warmup_steps: int = 0
    schedule: str = "cosine"          # cosine | constant (after warm-up)
    grad_clip: float = 3.0            # 0 disables clipping
    # sharpness-aware minimisation (SAM, Foret et al. 2021; for unlearning, Fan et al. arXiv 2502.05374): each step
    # takes the gradient at the weights moved sam_rho along the normalised gradient, the worst nearby point, so the
    # run settles where the loss is flat (harder to undo by fine-tuning); two forward-backward passes per step
    sam_rho: float | None = field(default=None, metadata=WHEN_SET_KEY)

    def __post_init__(self):
        if not self.lr > 0:
            raise UserError(f"optim.lr must be > 0, got {self.lr}")
        if self.sam_rho is not None and not self.sam_rho >= 0:
            raise UserError(f"optim.sam_rho must be >= 0, got {self.sam_rho}")
        if self.warmup_steps < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise UserError("optim.warmup_steps, optim.grad_clip and optim.weight_decay must be >= 0")
        if not all(0 <= b < 1 for b in self.betas):
            raise UserError(f"optim.betas must lie in [0, 1), got {list(self.betas)}")


@dataclass
class TrainConfig:
    """Training a model family from scratch (`i2i-unlearn train`, and the `retrain` baseline)."""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: dict = field(default_factory=lambda: {"family": "mae"})  # family + that family's knobs
    classes: list[str] | None = None  # train on these classes only (None = all)
    steps: int = 4000
    batch_size: int = 64
    tasks: list[TaskConfig] = field(default_factory=lambda: [
        TaskConfig("center-inpaint", 0.25), TaskConfig("center-inpaint", 0.5),
        TaskConfig("center-inpaint", 0.75), TaskConfig("outpaint", 0.5),
        TaskConfig("random-patches", 0.75)])
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05, warmup_steps=200, schedule="cosine", grad_clip=1.0))
    ema_decay: float = 0.0            # > 0: keep an EMA of the weights (diffusers EMAModel) and save it instead
    checkpoint_every: int = 500
    log_every: int = 50
    # the memory and speed options of UnlearnConfig (their help there); recorded only when set
    mixed_precision: str | None = field(default=None, metadata=WHEN_SET_KEY)
    gradient_checkpointing: bool | None = field(default=None, metadata=WHEN_SET_KEY)
    data_workers: int | None = field(default=None, metadata=WHEN_SET_KEY)


@dataclass
class TokenizerTrainConfig:
    """Training a VQ tokenizer as a VQ-GAN (`i2i-unlearn train-tokenizer`), for the vqgan family."""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: dict = field(default_factory=dict)  # VQTokenizerConfig knobs (models/vqgan.py)
    classes: list[str] | None = None  # train on these classes only (None = all)
    steps: int = 1500
    batch_size: int = 64
    l1_weight: float = 1.0            # reconstruction = l1_weight * L1 + MSE, in [-1, 1] pixel space
    adversarial: bool = True          # hinge-loss patch discriminator (a training-time part only)
    adversarial_weight: float = 0.1
    adversarial_start: int = 500      # steps of plain reconstruction before the discriminator joins
    discriminator_width: int = 32
    dead_code_threshold: float = 0.1   # a code used less than this share of a uniform code's use ...
    usage_decay: float = 0.9           # ... in this running average (about 20 steps unused) is re-initialised from the batch
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        optimizer="adam", lr=5e-4, betas=(0.5, 0.9), weight_decay=0.0, warmup_steps=100, schedule="cosine",
        grad_clip=1.0))
    checkpoint_every: int = 250
    log_every: int = 25


@dataclass
class ProxyTeacherConfig:
    """A proxy retain set made of the original (teacher) model's own outputs (docs/proxy.md): each input with most
    of it hidden (`task`), completed by the teacher once before training, so the proxy lies in the model's output
    domain. The inputs are the proxy dataset's training images (after proxy_transform) or noise images; never a
    forget image."""
    inputs: str = knob("proxy", "the teacher's inputs: proxy (the proxy dataset's images) | noise (no dataset needed)")
    noise: str = knob("uniform", "the noise images when inputs is noise: uniform | standard-gaussian")
    task: TaskConfig = knob(factory=lambda: TaskConfig("random-patches", 0.75),
                            help="what is hidden of each input, for the teacher to fill: center-inpaint | "
                                 "outpaint | random-patches, and its ratio")
    images: int = knob(1000, "outputs generated once before training (at most: a retain_size / retain_ratio sample "
                             "of the inputs comes first); diffusion and vqgan generate slowly, mae in seconds")


@dataclass
class UnlearnConfig:
    """Unlearning a trained model (`i2i-unlearn unlearn`). Defaults follow the released code
    where it fits this scale; method.md section 2 lists where they come from."""
    method: str = knob("ours", "the unlearning method: see `i2i-unlearn list methods`")
    seed: int = knob(0, "seed of every random choice")
    forget_classes: list[str] = knob(factory=list, help="class names to forget")
    forget_files: str | None = knob(None, "text file of image ids to forget, one per line (instead of classes)")
    retain_classes: list[str] | None = knob(None, "retain only these classes (unset: every class not forgotten)")
    retain_size: int | None = knob(None, "sample this many retain images (or retain_ratio, not both)")
    retain_ratio: float | None = knob(None, "sample this many retain images per forget image (or retain_size)")
    proxy: DataConfig | None = knob(None, "a proxy retain set from another dataset (replaces the real one)")
    proxy_classes: list[str] | None = knob(None, "classes of the proxy dataset to use")
    proxy_transform: list[str] | None = knob(
        None, "transform the proxy images toward the model's domain, in this order: binarize (white-on-black "
              "silhouettes) | augment (random flips, rotations, scalings, shifts); docs/proxy.md", **WHEN_SET_KEY)
    proxy_teacher: ProxyTeacherConfig | None = knob(
        None, "a proxy made of the original model's own completions of mostly hidden inputs (the proxy "
              "dataset's images or noise images); docs/proxy.md", **WHEN_SET_KEY)
    alpha: float = knob(0.25, "weight of the forget term")
    noise: str = knob("batch-gaussian", "the forget target's noise: batch-gaussian | standard-gaussian | uniform")
    noise_context: str | None = knob(
        None, "ours on diffusion, the forget target: unset = the released code's teacher input (the forget image's "
              "own pixels around a hole of pure noise; it equals the forget input at the noisiest timesteps, where "
              "the term vanishes) | noise = the paper's T(n), the noise image around the hole too (what the MAE "
              "and VQ-GAN families always use)", **WHEN_SET_KEY)
    feature_norm: str = knob("none", "none | teacher-variance (per feature map)")
    perturb: float | None = knob(
        None, "undo: the share of a fresh initialisation mixed into the unlearned model's weights before "
              "distilling (unset: 0.3; 0: plain distillation)", **WHEN_SET_KEY)
    steps: int = knob(500, "optimisation steps")
    batch_size: int = knob(32, "forget images per step")
    retain_batch_size: int | None = knob(None, "retain images per step (unset: batch_size)")
    tasks: list[TaskConfig] = knob(factory=lambda: [
        TaskConfig("center-inpaint", 0.25), TaskConfig("center-inpaint", 0.5),
        TaskConfig("center-inpaint", 0.75), TaskConfig("outpaint", 0.5)], help="the tasks, one picked per step")
    optim: OptimConfig = knob(factory=lambda: OptimConfig(lr=5e-4, warmup_steps=25), help="the optimiser")
    checkpoint_every: int = knob(100, "steps between checkpoints (a budgeted run or a membership stop also "
                                      "measures there)")
    log_every: int = knob(10, "steps between log lines")
    mixed_precision: str | None = knob(
        None, "bf16: each step's forward passes (student and teacher) in bfloat16 autocast, weights and optimiser in "
              "float32: faster and smaller on GPUs with bf16, rarely faster on CPUs; unset or no: float32",
        **WHEN_SET_KEY)
    gradient_checkpointing: bool | None = knob(
        None, "recompute the network's block activations in the backward pass instead of keeping them: less memory "
              "for the trained encoder, more time per step, the same gradients (every family)", **WHEN_SET_KEY)
    data_workers: int | None = knob(
        None, "DataLoader worker processes that read and decode the coming steps' images while a step computes "
              "(an image folder at full size: a few per GPU); the same batches with any number; unset or 0: read "
              "in the run's own process", **WHEN_SET_KEY)
    # A budgeted run (docs/budget.md): alpha is where the controller starts; at every checkpoint it measures a
    # validation sample and turns alpha so the retain score stays within the budget.
    retain_budget: float | None = knob(
        None, "budgeted run: the retain score on validation images may grow to this multiple of the original's "
              "(> 1, e.g. 1.10); alpha is then controlled (docs/budget.md); unset: alpha fixed", **BUDGET_KEY)
    forget_goal: float | None = knob(
        None, "budgeted run: stop once the forget score is at most this multiple of the original's (< 1, e.g. "
              "0.33); unset: forget as far as the budget allows", **BUDGET_KEY)
    budget_metric: str = knob("fid", "budgeted run: the retain score, fid (through the evaluator) | hole-mse (no "
                                     "evaluator)", **BUDGET_KEY)
    forget_metric: str | None = knob(None, "budgeted run: the forget score, recognition (through the evaluator) | "
                                           "hole-mse; unset: recognition, or hole-mse when budget_metric is hole-mse",
                                     **BUDGET_KEY)
    budget_evaluator: str = knob(str(shipped.EVALUATOR), "budgeted run: the evaluator directory (or clip:/dir, "
                                                         "hf:/dir)", **BUDGET_KEY)
    budget_images: int = knob(256, "budgeted run: validation images measured per side (at most)", **BUDGET_KEY)
    # A file request can stop where its images stop standing out (controllers/membership.py).
    stop_at_auc: float | None = knob(
        None, "file request: stop once the membership attack's AUC (the forgotten files against never-seen "
              "validation images of their classes, at every checkpoint) is at most this (0.5 = told apart no "
              "better than chance)", **WHEN_SET_KEY)


@dataclass
class EvaluatorConfig:
    """Training the domain evaluator (`i2i-unlearn train-evaluator`), method.md section 4."""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    feature_dim: int = 64             # penultimate features: FID, KID, similarity, T-SNE
    width: int = 32                   # channels of the first conv block (doubled twice)
    steps: int = 1500
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    no_object_fraction: float = 0.25  # share of each batch turned into the extra "no object" class
    blur_fill_fraction: float = 0.3   # real images whose hole is filled with a blur of itself (keep label)
    log_every: int = 50
