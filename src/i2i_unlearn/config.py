"""Run configurations as dataclasses. YAML in, unknown keys rejected, every knob visible.

A config file mirrors these classes one to one; `to_dict` is what gets recorded beside results.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from i2i_unlearn import shipped
from i2i_unlearn.errors import UserError


@dataclass
class DataConfig:
    dataset: str = "animal-mnist"     # a name from `i2i-unlearn list datasets`
    root: str | None = None           # folder for fashion-mnist IDX files or an image folder
    image_size: int = 32              # 28px datasets are zero-padded, folders are resized
    channels: int = 1                 # 1 = grey, 3 = RGB (image folders are converted)
    test_per_class: int = 100         # held-out test images per class, never seen by training or unlearning
    val_per_class: int = 50           # validation images per class (knobs are chosen on them), never trained on
    split_seed: int = 0               # the train/validation/test split depends only on this seed


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

    def __post_init__(self):
        if not self.lr > 0:
            raise UserError(f"optim.lr must be > 0, got {self.lr}")
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


# to_dict leaves a field with this metadata out while the field it names is None: keys added for a new mode
# are then absent from the records of runs that do not use it, so those records (and the cache keys and resume
# checks built from them, e.g. benchmarks/tune.py's trial keys) stay what they were before the keys existed.
RECORDED_ONLY_WITH = "recorded_only_with"
BUDGET_KEY = {RECORDED_ONLY_WITH: "retain_budget"}
# to_dict leaves a field with this metadata out while it is None (an option that is off), for the same reason; kept
# apart from RECORDED_ONLY_WITH, whose fields controllers/budget.py treats as the budget's own keys.
RECORDED_WHEN_SET = "recorded_when_set"
WHEN_SET_KEY = {RECORDED_WHEN_SET: True}


@dataclass
class ProxyTeacherConfig:
    """A proxy retain set made of the original (teacher) model's own outputs (docs/proxy.md): each input with most
    of it hidden (`task`), completed by the teacher once before training, so the proxy lies in the model's output
    domain. The inputs are the proxy dataset's training images (after proxy_transform) or noise images; never a
    forget image."""
    inputs: str = "proxy"             # proxy (the proxy dataset's images) | noise
    noise: str = "uniform"            # the noise images when inputs is noise: uniform | standard-gaussian
    task: TaskConfig = field(default_factory=lambda: TaskConfig("random-patches", 0.75))  # what the teacher fills
    images: int = 1000                # outputs generated (at most: a retain_size / retain_ratio sample of the inputs
                                      # comes first); diffusion and vqgan generate slowly, mae in seconds


@dataclass
class UnlearnConfig:
    """Unlearning a trained model (`i2i-unlearn unlearn`). Defaults follow the released code
    where it fits this scale; method.md section 2 lists where they come from."""
    method: str = "ours"
    seed: int = 0
    forget_classes: list[str] = field(default_factory=list)
    forget_files: str | None = None   # text file with one image id per line (instead of classes)
    retain_classes: list[str] | None = None  # None = every class not forgotten
    retain_size: int | None = None    # sample this many retain images ...
    retain_ratio: float | None = None  # ... or this many per forget image (not both)
    proxy: DataConfig | None = None   # a proxy retain set from another dataset (replaces the real one)
    proxy_classes: list[str] | None = None
    # the proxy's images transformed toward the model's domain, in this order: binarize (white-on-black silhouettes)
    # | augment (random flips, rotations, scalings, shifts); docs/proxy.md. Recorded only when set.
    proxy_transform: list[str] | None = field(default=None, metadata=WHEN_SET_KEY)
    # the proxy made of the original model's own completions of the proxy's (or noise) images; recorded only when set
    proxy_teacher: ProxyTeacherConfig | None = field(default=None, metadata=WHEN_SET_KEY)
    alpha: float = 0.25               # weight of the forget term
    noise: str = "batch-gaussian"     # batch-gaussian | standard-gaussian | uniform
    # ours's forget target on the diffusion family: None = the released code's teacher input (the forget image's own
    # pixels around a hole of pure noise; it equals the forget input at the noisiest timesteps, where the term
    # vanishes) | noise = the paper's T(n), the noise image around the hole too (what the MAE and VQ-GAN families
    # always use). Recorded only when set.
    noise_context: str | None = field(default=None, metadata=WHEN_SET_KEY)
    feature_norm: str = "none"        # none | teacher-variance (per feature map)
    steps: int = 500
    batch_size: int = 32              # forget images per step
    retain_batch_size: int | None = None  # retain images per step (None = batch_size)
    tasks: list[TaskConfig] = field(default_factory=lambda: [
        TaskConfig("center-inpaint", 0.25), TaskConfig("center-inpaint", 0.5),
        TaskConfig("center-inpaint", 0.75), TaskConfig("outpaint", 0.5)])
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-4, warmup_steps=25))
    checkpoint_every: int = 100       # a budgeted run also measures here
    log_every: int = 10
    # A budgeted run (docs/budget.md): alpha is where the controller starts; at every checkpoint it measures a
    # validation sample and turns alpha so the retain score stays within the budget. Recorded only when set.
    # retain_budget: the retain score may grow to this multiple of the original's (> 1, e.g. 1.10); None: fixed alpha
    retain_budget: float | None = field(default=None, metadata=BUDGET_KEY)
    # forget_goal: stop once the forget score is at most this multiple of the original's (< 1, e.g. 0.33);
    # None: forget as far as the budget allows
    forget_goal: float | None = field(default=None, metadata=BUDGET_KEY)
    budget_metric: str = field(default="fid", metadata=BUDGET_KEY)   # fid (through the evaluator) | hole-mse
    # recognition (evaluator) | hole-mse; None: recognition, or hole-mse when budget_metric is hole-mse
    forget_metric: str | None = field(default=None, metadata=BUDGET_KEY)
    budget_evaluator: str = field(default=str(shipped.EVALUATOR), metadata=BUDGET_KEY)
    budget_images: int = field(default=256, metadata=BUDGET_KEY)   # validation images measured per side (at most)
    # A file request can stop where its images stop standing out (controllers/membership.py): at every checkpoint the
    # membership attack's AUC, the forgotten files against never-seen validation images of their classes; the run
    # ends once it is at most this (0.5 = told apart no better than chance). Recorded only when set.
    stop_at_auc: float | None = field(default=None, metadata=WHEN_SET_KEY)


def from_dict(cls, values: dict, where: str = ""):
    """Build dataclass `cls` from a plain dict, refusing unknown keys with the list of known ones."""
    if not isinstance(values, dict):
        raise UserError(f"config{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    # YAML keys need not be strings (`1:`, `null:`): shown as text, never compared with each other
    unknown = sorted(str(key) if isinstance(key, str) and key.isprintable() else repr(key)
                     for key in set(values) - set(known))
    if unknown:
        raise UserError(f"config{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    missing = [name for name, f in known.items() if name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UserError(f"config{where}: missing key(s) {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _convert(hints[name], value, f"{where}.{name}") for name, value in values.items()}
    return cls(**kwargs)


def _convert(hint, value, where):
    """`value` as the declared type `hint`, or a one-line error naming the key."""
    if hint is typing.Any:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if value is None:
        if origin in (typing.Union, types.UnionType) and type(None) in args:
            return None
        raise UserError(f"config{where}: must be set (got null)")
    if origin in (typing.Union, types.UnionType):
        return _convert(_union_member([a for a in args if a is not type(None)], value), value, where)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_dict(hint, value, where)
    if origin is dict:   # dict[str, X]: entries by name, each checked as X under its name
        if not isinstance(value, dict):
            raise UserError(f"config{where}: expected a mapping by name, got {_short(value)}")
        return {_name(key, where): _convert(args[1], item, f"{where}.{key}") for key, item in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            example = value if isinstance(value, str) and value.isprintable() else repr(value)  # one line
            raise UserError(f"config{where}: expected a list, e.g. [{example}], got {type(value).__name__} {value!r}")
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
            if len(value) != len(args):
                raise UserError(f"config{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is float:
        number = None
        if isinstance(value, str):   # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:    # an int too large for a float
                number = math.inf
        if number is None:
            raise UserError(f"config{where}: expected a number, got {value!r}")
        if not math.isfinite(number):   # NaN or infinity is no setting: it would surface as a NaN loss
            raise UserError(f"config{where}: expected a finite number, got {_short(value)}")
        return number
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise UserError(f"config{where}: expected a whole number, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise UserError(f"config{where}: expected true or false, got {value!r}")
    if hint is str and not isinstance(value, str):
        raise UserError(f"config{where}: expected a string, got {value!r}")
    if hint is dict and not isinstance(value, dict):
        raise UserError(f"config{where}: expected a mapping, got {value!r}")
    return value


def _union_member(options: list, value):
    """The member of a union (`str | list[str]`) that `value` is written as: a list for a list, a mapping or a
    dataclass for a mapping, else the first that is neither; a union of one is that one."""
    def shape(option):
        origin = typing.get_origin(option) or option
        return "list" if origin in (list, tuple) else "mapping" if origin is dict or dataclasses.is_dataclass(
            option) else "scalar"
    written = "list" if isinstance(value, (list, tuple)) else "mapping" if isinstance(value, dict) else "scalar"
    return next((option for option in options if shape(option) == written), options[0])


def _name(key, where: str) -> str:
    """A name in a mapping by name: YAML reads `0.5:` or `1:` as a number, meant as its text."""
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return str(key)
    if not isinstance(key, str):
        raise UserError(f"config{where}: names must be text, got {key!r}")
    return key


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def to_dict(config) -> dict:
    """Plain, YAML/JSON-safe dict of a config (tuples become lists); fields marked RECORDED_ONLY_WITH are left
    out while the field they name is None, fields marked RECORDED_WHEN_SET while they are None."""
    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    values = plain(dataclasses.asdict(config))
    for f in dataclasses.fields(config):
        switch = f.metadata.get(RECORDED_ONLY_WITH)
        if switch and getattr(config, switch) is None:
            del values[f.name]
        elif f.metadata.get(RECORDED_WHEN_SET) and getattr(config, f.name) is None:
            del values[f.name]
    return values


def read_yaml(path: str | Path) -> dict:
    """A YAML file's mapping as written (unchecked), or a one-line error; an empty file is {}."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    # ValueError: PyYAML builds `2020-13-45` as a date and fails; also a file that is not UTF-8 text
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise UserError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from None  # one line
    return values


def load_yaml(cls, path: str | Path):
    """Dataclass `cls` from a YAML file, checked by from_dict; errors name the file and the key."""
    return from_dict(cls, read_yaml(path), f" {Path(path).name}")


def with_overrides(config, overrides: list[str]):
    """`config` with `key=value` overrides (`--set`): a dotted key reaches into a nested config (`optim.lr=1e-4`),
    the value is read as YAML (`tasks=[{name: outpaint, ratio: 0.5}]`), and the result is checked by from_dict like
    a config file, so an unknown key or a wrong type is refused the same way."""
    if not overrides:
        return config
    values = dataclasses.asdict(config)
    for text in overrides:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects KEY=VALUE (e.g. optim.lr=1e-4), got {text!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except (yaml.YAMLError, ValueError) as exc:
            raise UserError(f"--set {key}: {raw!r} is not a YAML value: {' '.join(str(exc).split())}") from None
        *parents, leaf = key.strip().split(".")
        target = values
        for part in parents:
            if not isinstance(target.get(part), dict):
                target[part] = {} if target.get(part) is None else target[part]
            if not isinstance(target[part], dict):
                raise UserError(f"--set {key}: {part} is not a nested config")
            target = target[part]
        target[leaf] = value
    return from_dict(type(config), values, " (--set)")


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
