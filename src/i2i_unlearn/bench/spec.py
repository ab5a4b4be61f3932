"""The bench config (benchmarks/bench-<name>.yaml): its keys, its checks, and each cell's unlearning config."""
from __future__ import annotations

from pathlib import Path

import yaml

from i2i_unlearn.config import TaskConfig, UnlearnConfig, from_dict, load_yaml, to_dict
from i2i_unlearn.errors import UserError
from i2i_unlearn.tasks import check_task
from i2i_unlearn.unlearn import check_config

BENCH_KEYS = ("name", "evaluator", "split", "eval_seed", "bootstrap", "eval_per_class", "work", "results", "datasets",
              "families", "methods", "seeds", "tasks", "ablations")

ABLATION_KEYS = ("methods", "seeds", "tasks", "vary", "values", "settings", "doc")

METHOD_KEYS = ("knobs", "method", "set", "doc")

FAMILY_KEYS = ("dataset", "original", "retrained")

DATASET_KEYS = ("forget_classes", "root")

def _relative_to(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    return path if path.is_absolute() else base / path

def _check_keys(values, known, where: str) -> dict:
    if not isinstance(values, dict):
        raise UserError(f"bench config {where}: expected a mapping, got {type(values).__name__}")
    unknown = sorted(str(k) for k in values if k not in known)
    if unknown:
        raise UserError(f"bench config {where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return values

def load_bench(path: str | Path, root: str | Path | None = None) -> dict:
    """The bench config, checked; relative paths are taken from `root` (default: the current folder)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"bench config not found: {path}")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise UserError(f"bench config {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    _check_keys(spec, BENCH_KEYS, path.name)
    for key in ("evaluator", "datasets", "families", "methods", "seeds", "tasks"):
        if not spec.get(key):
            raise UserError(f"bench config {path.name}: '{key}' is missing or empty")
    root = Path(root) if root is not None else Path.cwd()
    name = str(spec.get("name") or path.stem)
    seeds = spec["seeds"]
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise UserError(f"bench config {path.name}: seeds must be a list of whole numbers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"bench config {path.name}: seeds repeat: {seeds}")
    bench = {
        "name": name, "source": str(path), "root": root,
        "evaluator": _relative_to(root, str(spec["evaluator"])),
        "split": spec.get("split", "test"), "eval_seed": spec.get("eval_seed", 0),
        "bootstrap": spec.get("bootstrap", 200),
        "eval_per_class": spec.get("eval_per_class"),   # None: every held-out image; N: the first N of each class
        "work": _relative_to(root, spec.get("work") or f"runs/{name}"),
        "results": _relative_to(root, spec.get("results") or f"benchmarks/results/{name}"),
        "seeds": seeds, "tasks": _tasks(spec["tasks"], "tasks"), "datasets": {}, "families": {}, "methods": {},
        "ablations": {}, "raw": spec,
    }
    if bench["split"] not in ("test", "val"):
        raise UserError(f"bench config split: test or val, got {bench['split']!r}")
    for key, least in (("eval_seed", 0), ("bootstrap", 0), ("eval_per_class", 2)):
        value = bench[key]
        if (value is not None or key != "eval_per_class") and (
                not isinstance(value, int) or isinstance(value, bool) or value < least):
            raise UserError(f"bench config {key}: expected a whole number >= {least}, got {value!r}")
    for key in ("datasets", "families", "methods"):
        if not isinstance(spec[key], dict):
            raise UserError(f"bench config {path.name}: '{key}' must be a mapping by name")
    for dataset, values in spec["datasets"].items():
        values = _check_keys(values or {}, DATASET_KEYS, f"datasets.{dataset}")
        classes = values.get("forget_classes")
        if not classes or not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise UserError(f"bench config datasets.{dataset}.forget_classes: a list of class names, got {classes!r}")
        bench["datasets"][dataset] = {"forget_classes": classes, "root": values.get("root")}
    for family, values in spec["families"].items():
        values = _check_keys(values or {}, FAMILY_KEYS, f"families.{family}")
        for key in ("dataset", "original"):
            if not values.get(key):
                raise UserError(f"bench config families.{family}: '{key}' is missing")
        if values["dataset"] not in bench["datasets"]:
            raise UserError(f"bench config families.{family}.dataset: {values['dataset']!r} is not in datasets "
                            f"({', '.join(bench['datasets'])})")
        retrained = values.get("retrained") or []
        retrained = [retrained] if isinstance(retrained, str) else list(retrained)
        bench["families"][family] = {"dataset": values["dataset"],
                                     "original": _relative_to(root, str(values["original"])),
                                     "retrained": [_relative_to(root, str(r)) for r in retrained]}
    for label, values in spec["methods"].items():
        values = _check_keys(values or {}, METHOD_KEYS, f"methods.{label}")
        if not values.get("knobs"):
            raise UserError(f"bench config methods.{label}: 'knobs' (the method's knobs file) is missing")
        overrides = values.get("set") or {}
        if not isinstance(overrides, dict):
            raise UserError(f"bench config methods.{label}.set: expected a mapping of UnlearnConfig keys")
        bench["methods"][label] = {"knobs": str(values["knobs"]), "method": values.get("method"),
                                   "set": overrides, "doc": values.get("doc")}
    for ablation, values in (spec.get("ablations") or {}).items():
        values = _check_keys(values or {}, ABLATION_KEYS, f"ablations.{ablation}")
        methods = values.get("methods") or []
        unknown = [m for m in methods if m not in bench["methods"]]
        if not methods or unknown:
            raise UserError(f"bench config ablations.{ablation}.methods: {unknown or 'none'} not in methods "
                            f"({', '.join(bench['methods'])})")
        if "vary" in values and "settings" in values:
            raise UserError(f"bench config ablations.{ablation}: give vary + values or settings, not both")
        ablation_seeds = values.get("seeds") or seeds[:1]
        if not isinstance(ablation_seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in ablation_seeds):
            raise UserError(f"bench config ablations.{ablation}.seeds: a list of whole numbers, got {ablation_seeds!r}")
        settings: dict[str, dict] = {}
        if "vary" in values:
            if not values.get("values") or not isinstance(values["values"], list):
                raise UserError(f"bench config ablations.{ablation}: vary needs a list of values")
            for value in values["values"]:
                settings[f"{values['vary']}={value}"] = _nested({values["vary"]: value})
        elif "settings" in values:
            for setting, overrides in (values["settings"] or {}).items():
                if not isinstance(overrides, dict):
                    raise UserError(f"bench config ablations.{ablation}.settings.{setting}: expected a mapping")
                settings[str(setting)] = overrides
        else:
            settings[""] = {}   # the methods as they are, e.g. on other tasks
        bench["ablations"][ablation] = {
            "methods": methods, "seeds": ablation_seeds, "settings": settings,
            "tasks": _tasks(values["tasks"], f"ablations.{ablation}.tasks") if values.get("tasks") else
            bench["tasks"][:1], "vary": values.get("vary"), "doc": values.get("doc")}
    return bench

def _tasks(values, where: str) -> list[TaskConfig]:
    if not isinstance(values, list):
        raise UserError(f"bench config {where}: a list of {{name, ratio}}, got {values!r}")
    tasks = [from_dict(TaskConfig, v, f" {where}[{i}]") for i, v in enumerate(values)]
    for task in tasks:
        check_task(task)
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

class MissingKnobs(UserError):
    """A method's knobs file is not there yet (a dry run lists it; anything else wrong in a config is an error)."""

def method_config(bench: dict, family: str, label: str, seed: int, setting: dict | None = None) -> UnlearnConfig:
    """The unlearning config of one cell: the method's knobs file (`{model}` in its path: the original's
    folder name), the method's overrides, the setting's overrides, the seed and the forget classes."""
    entry = bench["methods"][label]
    family_spec = bench["families"][family]
    knobs = _relative_to(bench["root"], entry["knobs"].format(model=family_spec["original"].name, family=family))
    if not knobs.is_file():
        raise MissingKnobs(f"knobs file of method {label!r} not found: {knobs} (choose the knobs first: "
                        "benchmarks/tune.py writes them)")
    values = to_dict(load_yaml(UnlearnConfig, knobs))
    values = _merge(values, _nested(entry["set"]))
    values = _merge(values, setting or {})
    values.update(seed=seed, forget_classes=bench["datasets"][family_spec["dataset"]]["forget_classes"])
    if entry["method"]:
        values["method"] = entry["method"]
    config = from_dict(UnlearnConfig, values, f" (bench method {label})")
    check_config(config)   # an unknown method, a bad alpha or task: refused before anything runs
    return config
