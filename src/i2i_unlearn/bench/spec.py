"""The bench config (benchmarks/bench-<name>.yaml): its keys as dataclasses, checked by config.from_dict like an
unlearning config (unknown, missing and mistyped keys named by their path), and each cell's unlearning config."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2i_unlearn.checkpoints import read_json
from i2i_unlearn.config import TaskConfig, UnlearnConfig, from_dict, load_yaml, read_yaml, to_dict
from i2i_unlearn.errors import UserError
from i2i_unlearn.paths import absolute
from i2i_unlearn.runs import training_recipe
from i2i_unlearn.tasks import check_task
from i2i_unlearn.unlearn import check_config


@dataclass
class DatasetSpec:
    forget_classes: list[str]         # the classes every method forgets on this dataset
    root: str | None = None           # folder of the dataset's files (fashion-mnist IDX files, an image folder)


@dataclass
class FamilySpec:
    dataset: str                      # a name under datasets
    original: str                     # the trained model folder every method starts from
    retrained: str | list[str] | None = None   # reference folder(s) trained without the forget classes, one per seed
    # trainings of the original's recipe (as many optimizer steps) that recorded their machine's speed: the cost
    # targets read the training time at the reference speed from them where the shipped trainings recorded none
    timed: list[str] | None = None


@dataclass
class MethodSpec:
    knobs: str                        # its knobs file (an UnlearnConfig YAML); {model}: the original's folder name
    method: str | None = None         # the method, when not the knobs file's
    set: dict | None = None           # UnlearnConfig keys over the knobs file's (nested, or dotted: optim.lr)
    doc: str | None = None            # a line for the results page
    starts_from: str | None = None    # a method above: this one unlearns its model of the same seed (undo), and
                                      # its cost includes that run


@dataclass
class AblationSpec:
    methods: list[str]                # names under methods
    seeds: list[int] | None = None    # default: the bench's first seed
    tasks: list[TaskConfig] | None = None   # default: the bench's first task
    vary: str | None = None           # one UnlearnConfig key (dotted for nested) ...
    values: list[Any] | None = None   # ... set to each of these values; or:
    settings: dict[str, dict] | None = None  # named settings, each a mapping of UnlearnConfig keys
    doc: str | None = None


@dataclass
class BenchSpec:
    evaluator: str                    # the evaluator folder every cell is scored with
    datasets: dict[str, DatasetSpec]
    families: dict[str, FamilySpec]
    methods: dict[str, MethodSpec]
    seeds: list[int]                  # unlearning seeds of every method
    tasks: list[TaskConfig]           # every main cell is scored on these; the first is the main table's
    name: str | None = None           # default: the file's name without .yaml
    split: str = "test"               # test | val
    eval_seed: int = 0                # masks and sampling: the same for every model
    bootstrap: int = 200              # resamples of the held-out images per evaluation
    eval_per_class: int | None = None   # None: every held-out image; N: the first N of each class
    work: str | None = None           # unlearned models; default runs/<name>
    results: str | None = None        # cell and bench JSON; default benchmarks/results/<name>
    ablations: dict[str, AblationSpec] | None = None


def load_bench(path: str | Path, root: str | Path | None = None) -> dict:
    """The bench config, checked; relative paths are taken from `root` (default: the current folder)."""
    path = Path(path)
    raw = read_yaml(path)
    spec = from_dict(BenchSpec, raw, f" {path.name}")   # the keys and their types; below: what they refer to
    where = f"config {path.name}"
    for key in ("datasets", "families", "methods", "seeds", "tasks"):
        if not getattr(spec, key):
            raise UserError(f"{where}.{key}: is empty")
    if len(set(spec.seeds)) != len(spec.seeds):
        raise UserError(f"{where}.seeds: seeds repeat: {spec.seeds}")
    if spec.split not in ("test", "val"):
        raise UserError(f"{where}.split: test or val, got {spec.split!r}")
    for key, least in (("eval_seed", 0), ("bootstrap", 0), ("eval_per_class", 2)):
        value = getattr(spec, key)
        if value is not None and value < least:
            raise UserError(f"{where}.{key}: expected a whole number >= {least}, got {value!r}")
    root = Path(root) if root is not None else Path.cwd()
    name = spec.name or path.stem
    bench = {
        "name": name, "source": str(path), "root": root,
        "evaluator": absolute(spec.evaluator, root), "split": spec.split, "eval_seed": spec.eval_seed,
        "bootstrap": spec.bootstrap, "eval_per_class": spec.eval_per_class,
        "work": absolute(spec.work or f"runs/{name}", root),
        "results": absolute(spec.results or f"benchmarks/results/{name}", root),
        "seeds": spec.seeds, "tasks": _tasks(spec.tasks, f"{where}.tasks"),
        "datasets": {}, "families": {}, "methods": {}, "ablations": {}, "raw": raw,
    }
    for dataset, values in spec.datasets.items():
        if not values.forget_classes:
            raise UserError(f"{where}.datasets.{dataset}.forget_classes: is empty")
        bench["datasets"][dataset] = {"forget_classes": values.forget_classes, "root": values.root}
    for family, values in spec.families.items():
        if values.dataset not in bench["datasets"]:
            raise UserError(f"{where}.families.{family}.dataset: {values.dataset!r} is not in datasets "
                            f"({', '.join(bench['datasets'])})")
        retrained = [values.retrained] if isinstance(values.retrained, str) else values.retrained or []
        bench["families"][family] = {"dataset": values.dataset, "original": absolute(values.original, root),
                                     "retrained": [absolute(r, root) for r in retrained],
                                     "timed": [absolute(t, root) for t in values.timed or ()]}
        _check_timed(bench["families"][family], f"{where}.families.{family}.timed")
    for label, values in spec.methods.items():
        start = values.starts_from
        if start is not None and (start not in bench["methods"] or bench["methods"][start]["starts_from"]):
            raise UserError(f"{where}.methods.{label}.starts_from: {start!r} is not a method listed above it that "
                            f"starts from the original ({', '.join(bench['methods']) or 'none'})")
        bench["methods"][label] = {"knobs": values.knobs, "method": values.method, "set": values.set or {},
                                   "doc": values.doc, "starts_from": start}
    for ablation, values in (spec.ablations or {}).items():
        bench["ablations"][ablation] = _ablation(values, bench, f"{where}.ablations.{ablation}")
    return bench


def _check_timed(family: dict, where: str) -> None:
    """Each timed training recorded its machine's speed and ran the original's recipe (as many steps of the same
    batch): a training or a retraining."""
    recipe = (read_json(family["original"] / "run.json") if (family["original"] / "run.json").is_file() else {})
    shape = training_recipe(recipe) or (None, None)
    for folder in family["timed"]:
        run = read_json(folder / "run.json") if (folder / "run.json").is_file() else {}
        if not (run.get("host") or {}).get("matmul_gflops") or training_recipe(run) != shape:
            raise UserError(f"{where}: {folder} is not a training of the original's recipe ({shape[0]} steps of "
                            f"{shape[1]}) that recorded its machine's speed (its run.json: {run.get('kind')}, "
                            f"{run.get('steps')} steps of {(run.get('config') or {}).get('batch_size')}, speed "
                            f"{(run.get('host') or {}).get('matmul_gflops')})")


def _ablation(values: AblationSpec, bench: dict, where: str) -> dict:
    unknown = [m for m in values.methods if m not in bench["methods"]]
    if not values.methods or unknown:
        raise UserError(f"{where}.methods: {unknown or 'none'} not in methods ({', '.join(bench['methods'])})")
    if values.vary is not None and values.settings is not None:
        raise UserError(f"{where}: give vary + values or settings, not both")
    settings: dict[str, dict] = {}
    if values.vary is not None:
        if not values.values:
            raise UserError(f"{where}: vary needs a list of values")
        for value in values.values:
            settings[f"{values.vary}={value}"] = _nested({values.vary: value})
    elif values.settings is not None:
        settings = dict(values.settings)
    else:
        settings[""] = {}   # the methods as they are, e.g. on other tasks
    return {"methods": values.methods, "seeds": values.seeds or bench["seeds"][:1], "settings": settings,
            "tasks": _tasks(values.tasks, f"{where}.tasks") if values.tasks else bench["tasks"][:1],
            "vary": values.vary, "doc": values.doc}


def _tasks(tasks: list[TaskConfig], where: str) -> list[TaskConfig]:
    for i, task in enumerate(tasks):
        try:
            check_task(task)
        except UserError as exc:
            raise UserError(f"{where}[{i}]: {exc}") from None
    return tasks

def _nested(flat: dict) -> dict:
    """{"optim.lr": 1e-3} -> {"optim": {"lr": 1e-3}}."""
    out: dict = {}
    for key, value in flat.items():
        *parents, leaf = str(key).split(".")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return out

def _merge(base: dict, overrides: dict) -> dict:
    out = dict(base)
    for key, value in overrides.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out

def apply_set(values: dict, overrides: dict) -> dict:
    """A config's values with a `set:` block over them (dotted keys allowed: {"optim.lr": 1e-4}), as a bench row's
    or a robustness row's `set:` is applied."""
    return _merge(values, _nested(overrides))

class MissingKnobs(UserError):
    """A method's knobs file is not there yet (a dry run lists it; anything else wrong in a config is an error)."""

def method_config(bench: dict, family: str, label: str, seed: int, setting: dict | None = None) -> UnlearnConfig:
    """The unlearning config of one cell: the method's knobs file (`{model}` in its path: the original's
    folder name), the method's overrides, the setting's overrides, the seed and the forget classes."""
    entry = bench["methods"][label]
    family_spec = bench["families"][family]
    knobs = absolute(entry["knobs"].format(model=family_spec["original"].name, family=family), bench["root"])
    if not knobs.is_file():
        raise MissingKnobs(f"knobs file of method {label!r} not found: {knobs} (choose the knobs first: "
                        "benchmarks/tune.py writes them)")
    values = to_dict(load_yaml(UnlearnConfig, knobs))
    values = apply_set(values, entry["set"])
    values = _merge(values, setting or {})
    values.update(seed=seed, forget_classes=bench["datasets"][family_spec["dataset"]]["forget_classes"])
    if entry["method"]:
        values["method"] = entry["method"]
    config = from_dict(UnlearnConfig, values, f" (bench method {label})")
    check_config(config)   # an unknown method, a bad alpha or task: refused before anything runs
    return config
