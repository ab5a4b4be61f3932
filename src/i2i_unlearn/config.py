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
# checks built from them, e.g. bench/tune.py's trial keys) stay what they were before the keys existed.
RECORDED_ONLY_WITH = "recorded_only_with"
BUDGET_KEY = {RECORDED_ONLY_WITH: "retain_budget"}
# to_dict leaves a field with this metadata out while it is None (an option that is off), for the same reason; kept
# apart from RECORDED_ONLY_WITH, whose fields controllers/budget.py treats as the budget's own keys.
RECORDED_WHEN_SET = "recorded_when_set"
WHEN_SET_KEY = {RECORDED_WHEN_SET: True}


def knob(default=dataclasses.MISSING, help: str = "", *, factory=dataclasses.MISSING, **metadata):
    """A config field and its help text, the one place a knob is explained: `i2i-unlearn unlearn --help` shows it
    (cli/unlearning.py builds its flags from these fields; `field_help` reads it)."""
    return field(default=default, default_factory=factory, metadata={"help": help, **metadata})


def field_help(cls, name: str) -> str:
    """The help text of field `name` of config class `cls` (given by `knob`)."""
    return next(f.metadata.get("help", "") for f in dataclasses.fields(cls) if f.name == name)


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


def from_dict(cls, values: dict, where: str = ""):
    """Build dataclass `cls` from a plain dict, refusing unknown keys with the list of known ones and naming the
    required keys (fields without a default) that are missing. Every error names the key's path (`where`)."""
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
