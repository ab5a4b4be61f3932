"""`i2i-unlearn bench`: every family x method x seed x setting, one unlearning run and its evaluations.

A bench config (benchmarks/bench-<name>.yaml, BENCH_KEYS) names the evaluator, the datasets (each with
its forget classes), the families (each with its original model folder and its retrained reference
folders), the methods (each with its knobs file from the tuning step, and overrides), the unlearning
seeds, the tasks and the ablations. The plan is every cell:

    references:  (family, original | retrained folder, task)                     one evaluation each
    main:        (family, method, seed) unlearning run  x  every task             one evaluation per task
    ablations:   (family, method, setting, seed) unlearning run x the ablation's tasks

Caching. An unlearning run is keyed by the sha256 of its inputs (UNLEARN_KEY_DOC) and written to
<work>/models/<key>/; an evaluation is keyed by the unlearning key (or a reference's weights) and the
evaluation settings (EVAL_KEY_DOC) and written to <results>/cells/<key>.json. A finished cell is never
recomputed; a changed knob changes the keys of exactly the cells that use it; a killed bench starts
again where it stopped (an unlearning run from its last checkpoint, with the weights of an
uninterrupted run). <results>/bench.json assembles every finished cell into tables: mean over seeds
with a 95 % Student-t interval, the bootstrap interval over test images, per-class collateral damage
and the cost of each cell (wall time, peak RSS, steps/s). It is rewritten after every cell, so a
bench stopped half-way still says which cells ran and how long each took.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime
import functools
import hashlib
import json
import math
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from i2i_unlearn.checkpoints import read_json, versions, write_json_atomic
from i2i_unlearn.config import TaskConfig, UnlearnConfig, from_dict, load_yaml, to_dict
from i2i_unlearn.errors import UserError

BENCH_CODE_VERSION = 1   # bump when unlearning or evaluation code changes a number: every cell is recomputed
UNLEARNING_RECORD = "bench_unlearning.json"
BENCH_JSON = "bench.json"
SETS = ("forget", "retain")
VIEWS = ("whole", "hole")
# scores aggregated over seeds (per set and view); the hole view has the first three only
SCORES = ("fid", "similarity", "recognition", "is", "kid_mean", "noise_kl", "hidden_mse")
HOLE_SCORE_KEYS = ("fid", "similarity", "recognition")
CLASS_SCORE_KEYS = ("fid", "similarity", "recognition")
UNLEARN_KEY_DOC = ("sha256 of: the bench code version, the original model's weights sha256 and training data config, "
                   "the whole unlearning config (knobs file + overrides + seed + forget classes) and the library "
                   "versions (versions(): python, i2i-unlearn, torch, transformers, diffusers, ...)")
EVAL_KEY_DOC = ("sha256 of: the bench code version, the unlearning key (a reference: its weights sha256), the task, "
                "the split scored, the evaluation seed, the bootstrap resamples, the evaluator's sha256, the forget "
                "classes and the library versions")
TIE_RULE = ("two rows tie on a score when their means differ by less than sqrt(hw_a² + hw_b²), hw being each row's "
            "95 % half-width: sqrt(seed half-width² + bootstrap half-width²)")
INTERVAL_DOC = ("seed half-width: Student-t 95 % interval of the mean over unlearning seeds (none for one seed); "
                "bootstrap half-width: 1.96 x the bootstrap standard error over test images, root-mean-square over "
                "seeds (every seed is scored on the same test images, so this part does not shrink with more seeds); "
                "hw: both combined in quadrature")
BENCH_KEYS = ("name", "evaluator", "split", "eval_seed", "bootstrap", "eval_per_class", "work", "results", "datasets",
              "families", "methods", "seeds", "tasks", "ablations")
ABLATION_KEYS = ("methods", "seeds", "tasks", "vary", "values", "settings", "doc")
METHOD_KEYS = ("knobs", "method", "set", "doc")
FAMILY_KEYS = ("dataset", "original", "retrained")
DATASET_KEYS = ("forget_classes", "root")


# --- the config ---

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
    from i2i_unlearn.tasks import check_task
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
    from i2i_unlearn.unlearn import check_config
    check_config(config)   # an unknown method, a bad alpha or task: refused before anything runs
    return config


# --- keys ---

@functools.cache
def _versions() -> dict:
    return versions()


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:24]


def unlearn_key(original_info: dict, config: UnlearnConfig) -> str:
    """UNLEARN_KEY_DOC."""
    return _digest({"kind": "unlearn", "code": BENCH_CODE_VERSION,
                    "model_weights_sha256": original_info["weights_sha256"],
                    "training_data": (original_info.get("training") or {}).get("data"), "config": to_dict(config),
                    "versions": _versions()})


def eval_key(model: str, task: TaskConfig, bench: dict, evaluator_sha256: str, forget_classes: list[str]) -> str:
    """EVAL_KEY_DOC. `model`: the unlearning key, or "reference:<weights sha256>"."""
    return _digest({"kind": "evaluate", "code": BENCH_CODE_VERSION, "model": model, "task": to_dict(task),
                    "split": bench["split"], "eval_seed": bench["eval_seed"], "bootstrap": bench["bootstrap"],
                    "eval_per_class": bench["eval_per_class"], "evaluator_sha256": evaluator_sha256,
                    "forget_classes": forget_classes, "versions": _versions()})


# --- the plan ---

@dataclass
class Cell:
    family: str
    row: str                     # table row: original, retrained, a method label, or "<label> <setting>"
    group: str                   # reference, main, or an ablation's name
    task: TaskConfig
    key: str                     # the evaluation's key: <results>/cells/<key>.json
    seed: int | None = None      # unlearning seed; a reference's index among its folders
    label: str | None = None     # the bench's method label (methods: section)
    setting: str = ""            # the ablation setting's name
    vary: dict | None = None     # {"key", "value"} of a vary-ablation
    config: UnlearnConfig | None = None
    unlearn_key: str | None = None
    model_dir: Path | None = None   # a reference's folder; an unlearned model's folder under <work>/models
    overrides: dict = field(default_factory=dict)
    retrain_steps: int | None = None  # method retrain: the original's training steps

    def describe(self) -> dict:
        return {"family": self.family, "row": self.row, "group": self.group, "task": to_dict(self.task),
                "seed": self.seed, "label": self.label, "setting": self.setting, "vary": self.vary,
                "method": self.config.method if self.config else None, "key": self.key,
                "unlearn_key": self.unlearn_key, "steps": planned_steps(self)}


def planned_steps(cell: Cell) -> int | None:
    if cell.config is None:
        return None
    return cell.retrain_steps if cell.config.method == "retrain" else cell.config.steps


def _model_info(directory: Path) -> dict:
    from i2i_unlearn.checkpoints import read_config_dir
    return read_config_dir(directory)


def make_plan(bench: dict, methods: list[str] | None = None, *, missing_knobs: list | None = None) -> list[Cell]:
    """Every cell of the bench, in table order: references, main cells seed by seed, ablations (run_bench
    runs them grouped by model, `running_order`).
    `methods`: only these method labels. `missing_knobs`: collect knobs-file errors instead of raising
    (a dry run lists what it can)."""
    from i2i_unlearn.evaluation.embedders import load_embedder
    evaluator_sha = load_embedder(str(bench["evaluator"])).sha256
    if methods:
        unknown = [m for m in methods if m not in bench["methods"]]
        if unknown:
            raise UserError(f"--methods: {', '.join(unknown)} not in the bench's methods "
                            f"({', '.join(bench['methods'])})")
    cells: list[Cell] = []
    for family, spec in bench["families"].items():
        info = _model_info(spec["original"])
        forget = bench["datasets"][spec["dataset"]]["forget_classes"]
        unlearned: list[Cell] = []

        def add(label, seed, group, setting_name, overrides, tasks, vary=None):
            try:
                config = method_config(bench, family, label, seed, overrides)
            except MissingKnobs as exc:
                if missing_knobs is None:
                    raise
                missing_knobs.append(str(exc))
                return
            ukey = unlearn_key(info, config)
            row = f"{label} {setting_name}".strip()
            for task in tasks:
                unlearned.append(Cell(family, row, group, task, eval_key(ukey, task, bench, evaluator_sha, forget),
                                      seed, label, setting_name, vary, config, ukey, bench["work"] / "models" / ukey,
                                      overrides, (info.get("training") or {}).get("steps")))
        for seed in bench["seeds"]:
            for label in bench["methods"]:
                if not methods or label in methods:
                    add(label, seed, "main", "", {}, bench["tasks"])
        for ablation, spec_a in bench["ablations"].items():
            for label in spec_a["methods"]:
                if methods and label not in methods:
                    continue
                for setting_name, overrides in spec_a["settings"].items():
                    vary = ({"key": spec_a["vary"], "value": _leaf(overrides)} if spec_a["vary"] else None)
                    for seed in spec_a["seeds"]:
                        add(label, seed, ablation, setting_name, overrides, spec_a["tasks"], vary)
        tasks = list({json.dumps(to_dict(c.task)): c.task for c in unlearned}.values()) or bench["tasks"]
        references = [("original", 0, spec["original"]),
                      *(("retrained", i, d) for i, d in enumerate(spec["retrained"]))]
        for task in tasks:
            for row, index, directory in references:
                weights = _model_info(directory)["weights_sha256"]
                cells.append(Cell(family, row, "reference", task,
                                  eval_key(f"reference:{weights}", task, bench, evaluator_sha, forget), index,
                                  model_dir=directory))
        cells += unlearned
    return cells


def _leaf(nested: dict):
    value = nested
    while isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    return value


# --- measuring a cell ---

class Measure:
    """Wall time, CPU time (all threads of the process) and peak resident memory of a block. The peak is the
    block's own where Linux lets a process reset its high-water mark (/proc/self/clear_refs), else the
    process's since it started."""

    def __enter__(self):
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.scope = "cell"
        except OSError:
            self.scope = "process"
        self.started, self.cpu_started = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = time.process_time() - self.cpu_started
        self.peak_rss_mb = _peak_rss_mb()
        return False

    def record(self) -> dict:
        return {"wall_time_s": round(self.seconds, 2), "cpu_time_s": round(self.cpu_seconds, 2),
                "peak_rss_mb": self.peak_rss_mb, "peak_rss_scope": self.scope}


def host_speed() -> dict:
    """This machine at this moment: its CPU, the vector instructions torch's kernels use on it and the float32
    matmul throughput torch gets from it (about 0.3 s). Wall times of cells run on different machines, or
    beside another job, differ by this factor (1500 steps of the MAE's ours: 182-192 s on one session's
    machine, 306 s on another's); and the same seed gives the same weights only on the same kind of CPU (kernels
    round differently with other vector instructions)."""
    import torch
    a = torch.randn(512, 512, generator=torch.Generator().manual_seed(0))
    torch.mm(a, a)   # warm-up: the first call allocates
    repeats, started = 0, time.perf_counter()
    while time.perf_counter() - started < 0.3:
        torch.mm(a, a)
        repeats += 1
    seconds = time.perf_counter() - started
    return {"cpu": _cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_threads": torch.get_num_threads(),
            "matmul_gflops": round(2 * 512 ** 3 * repeats / seconds / 1e9, 1)}


@functools.cache
def _cpu_name() -> str | None:
    """The CPU's model name (Linux), read once per process: host_speed runs at every cell."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --- running cells ---

def _finished_unlearning(cell: Cell) -> dict | None:
    path = cell.model_dir / UNLEARNING_RECORD
    if not path.is_file():
        return None
    record = read_json(path)
    return record if record.get("key") == cell.unlearn_key else None


def _checkpoint_step(directory: Path) -> int:
    from i2i_unlearn.loop import CHECKPOINTS
    done = sorted((directory / CHECKPOINTS).glob("step-*[0-9]")) if (directory / CHECKPOINTS).is_dir() else []
    return int(done[-1].name.split("-")[1]) if done else 0


def run_unlearning(cell: Cell, bench: dict) -> dict:
    """The cell's unlearned model (cached by its key); a killed run continues from its last checkpoint."""
    from i2i_unlearn.runs import total_wall_time
    from i2i_unlearn.unlearn import unlearn
    record = _finished_unlearning(cell)
    if record is not None:
        return record
    original = bench["families"][cell.family]["original"]
    run_json = cell.model_dir / "run.json"
    if run_json.is_file() and (cell.model_dir / "model.safetensors").is_file():
        # finished, but killed before its bench record (e.g. while its checkpoints were being removed)
        wall = total_wall_time(read_json(run_json))
        return _record_unlearning(cell, bench, original, {"wall_time_s": wall, "peak_rss_mb": None,
                                                          "peak_rss_scope": None}, 0, wall)
    resume_from = _checkpoint_step(cell.model_dir) if cell.model_dir.is_dir() else 0
    data_root = bench["datasets"][bench["families"][cell.family]["dataset"]]["root"]
    host = host_speed()
    with Measure() as measure:
        unlearn(original, copy.deepcopy(cell.config), cell.model_dir, resume=resume_from > 0,
                overwrite=resume_from == 0, data_root=data_root)
    measured = measure.record()
    if resume_from:   # the cell's cost is the whole run's: add what the killed invocations spent (run.json)
        run = read_json(run_json)
        measured = {**measured, "wall_time_this_run_s": measured["wall_time_s"],
                    "wall_time_s": round(measured["wall_time_s"] + total_wall_time(run) - run["wall_time_s"], 2)}
    return _record_unlearning(cell, bench, original, {**measured, "host": host}, resume_from, measure.seconds)


def _record_unlearning(cell: Cell, bench: dict, original: Path, measured: dict, resume_from: int,
                       seconds: float | None) -> dict:
    from i2i_unlearn.checkpoints import sha256_file
    steps = planned_steps(cell) or cell.config.steps
    done = max(0, steps - resume_from)
    record = {"key": cell.unlearn_key, "method": cell.config.method, "config": to_dict(cell.config),
              "original_dir": _shown(original, bench),
              "weights_sha256": sha256_file(cell.model_dir / "model.safetensors"),
              "cost": {**measured, "steps": steps, "steps_this_run": done, "resumed_from_step": resume_from or None,
                       "steps_per_s": round(done / seconds, 3) if seconds and done else None}}
    write_json_atomic(bench["results"] / "unlearning" / f"{cell.unlearn_key}.json", record)
    write_json_atomic(cell.model_dir / UNLEARNING_RECORD, record)   # last: the run is done
    return record


class _Family:
    """What every evaluation of one family shares: the held-out sets and the evaluator, loaded once."""

    def __init__(self, bench: dict, family: str):
        from i2i_unlearn.data import make_unlearn_split
        from i2i_unlearn.evaluation.embedders import load_embedder
        from i2i_unlearn.models import load_model
        from i2i_unlearn.unlearn import default_retain_classes, training_data_config
        spec = bench["families"][family]
        original = load_model(spec["original"])
        forget = bench["datasets"][spec["dataset"]]["forget_classes"]
        data = training_data_config(original)
        root = bench["datasets"][spec["dataset"]]["root"]
        if root:
            data.root = root
        self.split = make_unlearn_split(data, UnlearnConfig(forget_classes=forget,
                                                            retain_classes=default_retain_classes(original, forget)),
                                        bench["split"])
        if bench["eval_per_class"]:   # a smaller bench: the first N held-out images of each class (a seeded order)
            self.split = dataclasses.replace(self.split, **{
                f"{side}_eval": _first_per_class(getattr(self.split, f"{side}_eval"), bench["eval_per_class"])
                for side in SETS})
        self.evaluator = load_embedder(str(bench["evaluator"]))
        names = self.evaluator.class_names if self.evaluator.has_classes else []
        self.forget_indices = [names.index(n) for n in self.split.forget_class_names if n in names]


def _first_per_class(images, count: int):
    import torch
    keep = [i for label in sorted(set(images.labels.tolist()))
            for i in torch.nonzero(images.labels == label).flatten()[:count].tolist()]
    return images.subset(sorted(keep))


def evaluate_cell(model, family: _Family, task: TaskConfig, bench: dict) -> dict:
    """Every score of one model on the held-out forget and retain sets (evaluate.score_set)."""
    import torch

    from i2i_unlearn.evaluation.evaluate import score_set
    from i2i_unlearn.evaluation.generation import generate_outputs
    from i2i_unlearn.tasks import noise_image
    seed = bench["eval_seed"]
    out = {"metrics": {}, "hole_metrics": {}, "intervals": {}, "per_class": {}, "counts": {}}
    for set_name in SETS:
        images = getattr(family.split, f"{set_name}_eval")
        out["counts"][set_name] = len(images)
        if len(images) < 2:
            out["metrics"][set_name] = out["hole_metrics"][set_name] = out["intervals"][set_name] = None
            continue
        truth = images.images
        outputs, masks = generate_outputs(model, truth, task, seed)
        noise = noise_image(truth, "batch-gaussian", torch.Generator().manual_seed(seed))
        noise_outputs, _ = generate_outputs(model, noise, task, seed)
        scored = score_set(family.evaluator, outputs, truth, masks, images.labels, images.class_names,
                           family.forget_indices, noise_outputs, bootstrap=bench["bootstrap"], seed=seed)
        out["metrics"][set_name], out["hole_metrics"][set_name] = scored["whole"], scored["hole"]
        out["intervals"][set_name] = scored["intervals"]
        for name, entry in (scored["per_class"] or {}).items():
            out["per_class"][name] = {"set": set_name, **entry}
    return out


def run_cell(cell: Cell, bench: dict, families: dict, command: str) -> dict:
    """Unlearn (if the cell's model is not there yet), evaluate, write <results>/cells/<key>.json."""
    from i2i_unlearn.models import load_model
    unlearning = run_unlearning(cell, bench) if cell.config is not None else None
    if cell.family not in families:
        families[cell.family] = _Family(bench, cell.family)
    family = families[cell.family]
    host = host_speed()
    with Measure() as measure:
        model = load_model(cell.model_dir)
        scores = evaluate_cell(model, family, cell.task, bench)
    record = {"key": cell.key, "unlearn_key": cell.unlearn_key, "task": to_dict(cell.task),
              "model": {"weights_sha256": model.pretrained_info["weights_sha256"], "family": model.family,
                        "method": cell.config.method if cell.config else None,
                        "config": to_dict(cell.config) if cell.config else None,
                        "reference_dir": None if cell.config else _shown(cell.model_dir, bench)},
              "split": bench["split"], "eval_seed": bench["eval_seed"], "bootstrap": bench["bootstrap"],
              "evaluator": family.evaluator.describe(), "forget_classes": family.split.forget_class_names,
              "versions": versions(), "code_version": BENCH_CODE_VERSION, **scores,
              "cost": {"evaluation": {**measure.record(), "images": sum(scores["counts"].values()), "host": host},
                       "unlearning": (unlearning or {}).get("cost")},
              "run": {"command": command, "created": _now()}}
    write_json_atomic(bench["results"] / "cells" / f"{cell.key}.json", record)
    return record


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _cell_record(bench: dict, key: str) -> dict | None:
    path = bench["results"] / "cells" / f"{key}.json"
    if not path.is_file():
        return None
    record = read_json(path)
    return record if record.get("key") == key else None


# --- progress and the estimate of the time left ---

class Progress:
    """Cells done and the time left: pending unlearning steps at each family's measured steps/s, plus
    pending evaluations at each family's measured seconds per evaluation (cached cells count too)."""

    def __init__(self, cells: list[Cell], bench: dict, echo):
        self.cells, self.bench, self.echo = cells, bench, echo
        self.started = time.perf_counter()
        self.rates: dict[str, list] = {}   # family -> [steps, seconds, evaluations, seconds]

    def observe(self, cell: Cell, record: dict) -> None:
        rate = self.rates.setdefault(cell.family, [0, 0.0, 0, 0.0])
        unlearning = (record.get("cost") or {}).get("unlearning")
        if unlearning and unlearning.get("steps_this_run") and unlearning.get("wall_time_s"):
            rate[0] += unlearning["steps_this_run"]
            rate[1] += unlearning["wall_time_s"]
        rate[2] += 1
        rate[3] += record["cost"]["evaluation"]["wall_time_s"]

    def left(self, done: set[str], unlearned: set[str]) -> float | None:
        seconds = 0.0
        pending_unlearning, counted = set(), set()
        for cell in self.cells:
            if cell.key in done or cell.key in counted:
                continue
            counted.add(cell.key)
            steps, step_time, evaluations, evaluation_time = self.rates.get(cell.family, [0, 0.0, 0, 0.0])
            if not evaluations:
                return None
            seconds += evaluation_time / evaluations
            if cell.unlearn_key and cell.unlearn_key not in unlearned and cell.unlearn_key not in pending_unlearning:
                pending_unlearning.add(cell.unlearn_key)
                if not steps:
                    return None
                seconds += (planned_steps(cell) or 0) * step_time / steps
        return seconds

    def report(self, cell: Cell | None, done: set[str], unlearned: set[str]) -> None:
        total = len({c.key for c in self.cells})
        left = self.left(done, unlearned)
        what = "" if cell is None else (f" · ran {cell.family} {cell.row}"
                                        f"{'' if cell.seed is None else f' seed {cell.seed}'} "
                                        f"{cell.task.name} {cell.task.ratio:g}")
        estimate = "time left unknown yet" if left is None else f"~{_duration(left)} left"
        self.echo(f"[bench {self.bench['name']}] {len(done & {c.key for c in self.cells})}/{total} cells done{what} · "
                  f"elapsed {_duration(time.perf_counter() - self.started)} · {estimate}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def preflight(bench: dict, cells: list[Cell]) -> None:
    """Everything a cell will need, checked before any compute: model folders and their hashes, the
    evaluator, proxy datasets (e.g. Fashion-MNIST: its error says how to install it)."""
    from i2i_unlearn.data import load_split
    from i2i_unlearn.models import load_model
    for family, spec in bench["families"].items():
        for directory in [spec["original"], *spec["retrained"]]:
            load_model(directory)
    proxies = {json.dumps(to_dict(c.config.proxy), sort_keys=True): c.config.proxy for c in cells
               if c.config is not None and c.config.proxy is not None}
    for proxy in proxies.values():
        load_split(proxy)


def run_bench(bench: dict, *, command: str = "", methods: list[str] | None = None, echo=print) -> dict:
    """Run every missing cell, then return bench.json's content (also written after every cell)."""
    cells = make_plan(bench, methods)
    preflight(bench, cells)
    bench["results"].mkdir(parents=True, exist_ok=True)
    progress = Progress(cells, bench, echo)
    done, unlearned, families = set(), set(), {}
    for cell in cells:   # cached cells first: they count for the estimate
        record = _cell_record(bench, cell.key)
        if record is not None:
            done.add(cell.key)
            progress.observe(cell, record)
            if cell.unlearn_key:
                unlearned.add(cell.unlearn_key)
    progress.report(None, done, unlearned)
    for cell in running_order(cells, done):
        if cell.key in done:
            if not _scored_other_weights(bench, cell):
                continue
            echo(f"[bench {bench['name']}] {cell.family} {cell.row} seed {cell.seed} {cell.task.name} "
                 f"{cell.task.ratio:g}: scored again, its model was made again (the folder was gone)")
        record = run_cell(cell, bench, families, command)
        done.add(cell.key)
        if cell.unlearn_key:
            unlearned.add(cell.unlearn_key)
        progress.observe(cell, record)
        write_bench_json(bench, cells, command)
        progress.report(cell, done, unlearned)
    result = write_bench_json(bench, cells, command)
    for line in summary_lines(result):
        echo(line)
    return result


def running_order(cells: list[Cell], done: set[str]) -> list[Cell]:
    """The cells of every model with a pending cell, model by model: an unlearned model is scored on all its
    tasks (its hole-size cells too) right after it is made, so a bench stopped between sessions, or a machine
    wiped of its models, never leaves a model that must be made again for a later task. Within a model, its
    pending cells come first, then its finished ones, to be checked against the model as it now is."""
    models: dict[str, list[Cell]] = {}
    for cell in cells:
        models.setdefault(cell.unlearn_key or cell.key, []).append(cell)
    order = []
    for model_cells in models.values():
        if any(c.key not in done for c in model_cells):
            order += [c for c in model_cells if c.key not in done] + [c for c in model_cells if c.key in done]
    return order


def _scored_other_weights(bench: dict, cell: Cell) -> bool:
    """A finished cell whose model has since been made again with other weights (same key, e.g. its folder
    was lost and the remake ran on another machine): its scores are not those of the model the bench holds."""
    if not cell.unlearn_key:
        return False
    record = _cell_record(bench, cell.key)
    unlearning = bench["results"] / "unlearning" / f"{cell.unlearn_key}.json"
    if record is None or not unlearning.is_file():
        return False
    return record["model"]["weights_sha256"] != read_json(unlearning)["weights_sha256"]


def rewrite_tables(bench: dict, methods: list[str] | None = None) -> dict:
    """bench.json again from the finished cells, nothing run: to publish a bench stopped part-way, or its tables
    after a change to how they are assembled. It keeps the command of the run that made the cells."""
    previous = bench["results"] / BENCH_JSON
    command = read_json(previous).get("command", "") if previous.is_file() else ""
    return write_bench_json(bench, make_plan(bench, methods), command)


def summary_lines(result: dict) -> list[str]:
    """The worst retain class of each row (its FID ratio to the original), per family and task."""
    lines = []
    for table in result["tables"]:
        worst = []
        for row, entry in (table.get("collateral") or {}).items():
            change = next((c for c in entry["classes"] if c["class"] == entry["worst"]), None)
            if change and change["fid"]["change"] is not None:
                tie = " (tie)" if change["fid"]["verdict"] == "tie" else ""
                worst.append(f"{row} {entry['worst']} {change['fid']['change']:.2f}x{tie}")
        if worst:
            lines.append(f"{table['family']} {table['task']['name']} {table['task']['ratio']:g}: worst retain class "
                         f"(FID ratio to the original): " + "; ".join(worst))
    return lines


def dry_run(bench: dict, methods: list[str] | None = None, steps_per_s: float | None = None,
            evaluation_s: float | None = None, echo=print) -> dict:
    """The plan and its size, nothing run: unlearning runs and steps per family, evaluations, and with
    assumed speeds an estimate of the time. Cells already cached are counted apart."""
    missing: list[str] = []
    cells = make_plan(bench, methods, missing_knobs=missing)
    summary: dict = {"families": {}, "missing_knobs": sorted(set(missing))}
    for family in bench["families"]:
        mine = [c for c in cells if c.family == family]
        runs = {c.unlearn_key: c for c in mine if c.unlearn_key}
        evaluations = {c.key for c in mine}
        pending_evaluations = {k for k in evaluations if _cell_record(bench, k) is None}
        # a run is to do when one of its cells is and its model is not there (a fresh clone has the cells only)
        needed = {c.unlearn_key for c in mine if c.key in pending_evaluations}
        pending_runs = {k: c for k, c in runs.items()
                        if k in needed and not (c.model_dir / UNLEARNING_RECORD).is_file()}
        steps = sum(planned_steps(c) or 0 for c in pending_runs.values())
        entry = {"unlearning_runs": len(runs), "pending_unlearning_runs": len(pending_runs),
                 "pending_unlearning_steps": steps, "evaluations": len(evaluations),
                 "pending_evaluations": len(pending_evaluations),
                 "rows": sorted({c.row for c in mine})}
        if steps_per_s and evaluation_s:
            entry["estimated_s"] = round(steps / steps_per_s + len(pending_evaluations) * evaluation_s)
        summary["families"][family] = entry
        echo(f"{family}: {entry['pending_unlearning_runs']}/{entry['unlearning_runs']} unlearning runs to do "
             f"({steps} steps), {entry['pending_evaluations']}/{entry['evaluations']} evaluations to do"
             + (f"; about {_duration(entry['estimated_s'])} at {steps_per_s:g} steps/s and {evaluation_s:g} s per "
                f"evaluation" if "estimated_s" in entry else ""))
        echo("  rows: " + ", ".join(entry["rows"]))
    for message in summary["missing_knobs"]:
        echo(f"missing: {message}")
    return summary


# --- bench.json: the finished cells as tables ---

def _interval_row(values: list[float | None], boot_hws: list[float | None]) -> dict | None:
    """Mean over seeds, seed half-width (t), bootstrap half-width (RMS over seeds), combined."""
    from i2i_unlearn.evaluation.metrics import combined_half_width, seed_interval
    known = [v for v in values if v is not None]
    if not known:
        return None
    over_seeds = seed_interval(known)
    boots = [h for h in boot_hws if h is not None]
    boot_hw = math.sqrt(sum(h * h for h in boots) / len(boots)) if boots else None
    return {"mean": over_seeds["mean"], "seed_hw": over_seeds["hw"], "boot_hw": boot_hw,
            "hw": combined_half_width(over_seeds["hw"], boot_hw), "n": len(known), "values": values}


def _half(interval: dict | None) -> float | None:
    if not interval:
        return None
    return (interval["hi"] - interval["lo"]) / 2


def aggregate_row(records: list[dict]) -> dict:
    """One table row from the cell records of its seeds."""
    scores: dict = {}
    for set_name in SETS:
        scores[set_name] = {}
        for view in VIEWS:
            keys = SCORES if view == "whole" else HOLE_SCORE_KEYS
            block = {}
            for key in keys:
                values, hws = [], []
                for record in records:
                    source = record["metrics" if view == "whole" else "hole_metrics"].get(set_name)
                    values.append(None if source is None else source.get(key))
                    intervals = ((record.get("intervals") or {}).get(set_name) or {}).get(view) or {}
                    hws.append(_half(intervals.get(key)))
                block[key] = _interval_row(values, hws)
            scores[set_name][view] = block
    classes: dict = {}
    names = list(dict.fromkeys(name for record in records for name in record.get("per_class") or {}))
    for name in names:
        entries = [(record.get("per_class") or {}).get(name) for record in records]
        first = next(e for e in entries if e)
        classes[name] = {"set": first["set"], "count": first["count"]}
        for view in VIEWS:
            classes[name][view] = {
                key: _interval_row([(e or {}).get(view, {}).get(key) for e in entries],
                                   [_half(((e or {}).get("intervals") or {}).get(view, {}).get(key)) for e in entries])
                for key in CLASS_SCORE_KEYS}
    costs = [record.get("cost") or {} for record in records]
    unlearning = [c["unlearning"] for c in costs if c.get("unlearning")]
    evaluation = [c["evaluation"] for c in costs if c.get("evaluation")]

    def median(items, key):
        """Over seeds: a seed slowed by another job on the machine does not move it (wall times are not scores)."""
        values = [i[key] for i in items if i.get(key) is not None]
        return round(statistics.median(values), 3) if values else None
    cost = {"unlearning_wall_time_s": median(unlearning, "wall_time_s"), "steps": median(unlearning, "steps"),
            "steps_per_s": median(unlearning, "steps_per_s"),
            "unlearning_peak_rss_mb": max((u["peak_rss_mb"] for u in unlearning if u.get("peak_rss_mb")), default=None),
            "evaluation_wall_time_s": median(evaluation, "wall_time_s"),
            "evaluation_peak_rss_mb": max((e["peak_rss_mb"] for e in evaluation if e.get("peak_rss_mb")), default=None)}
    return {"scores": scores, "per_class": classes, "cost": cost}


def _collateral(rows: list[dict]) -> dict:
    from i2i_unlearn.evaluation.results import collateral
    per_class = {row["name"]: {name: {"set": entry["set"],
                                      "whole": {k: (entry["whole"][k] or {}).get("mean") for k in CLASS_SCORE_KEYS}}
                               for name, entry in row["per_class"].items()} for row in rows if row["per_class"]}
    widths = {(row["name"], name, key): (entry["whole"][key] or {}).get("hw")
              for row in rows for name, entry in row["per_class"].items() for key in CLASS_SCORE_KEYS}
    return collateral(per_class, "original", lambda row, name, key: widths.get((row, name, key)))


def assemble(bench: dict, cells: list[Cell]) -> dict:
    """The tables of bench.json from every finished cell (cells not run yet are listed as pending)."""
    tables: dict[tuple, dict] = {}
    cell_list = []
    records = {cell.key: _cell_record(bench, cell.key) for cell in cells}
    for cell in cells:
        record = records[cell.key]
        cell_list.append({**cell.describe(), "status": "done" if record else "pending",
                          "cost": record.get("cost") if record else None,
                          "created": (record.get("run") or {}).get("created") if record else None})
        table = tables.setdefault((cell.family, json.dumps(to_dict(cell.task))), {
            "family": cell.family, "task": to_dict(cell.task), "rows": {}})
        row = table["rows"].setdefault(cell.row, {"name": cell.row, "group": cell.group, "label": cell.label,
                                                  "method": cell.config.method if cell.config else None,
                                                  "setting": cell.setting, "vary": cell.vary, "seeds": [],
                                                  "planned_seeds": [], "records": []})
        if cell.seed not in row["planned_seeds"]:
            row["planned_seeds"].append(cell.seed)
            if record:
                row["seeds"].append(cell.seed)
                row["records"].append(record)
    out_tables = []
    for table in tables.values():
        rows = []
        for row in table["rows"].values():
            seeds = row.pop("records")
            rows.append({**row, **(aggregate_row(seeds) if seeds else {"scores": None, "per_class": {}, "cost": None})})
        family = bench["families"][table["family"]]
        first = next((records[c.key] for c in cells if c.family == table["family"] and records[c.key]), None)
        out_tables.append({**table, "dataset": family["dataset"],
                           "forget_classes": bench["datasets"][family["dataset"]]["forget_classes"],
                           "counts": (first or {}).get("counts"), "rows": rows,
                           "collateral": _collateral([r for r in rows if r["scores"]])})
    evaluator = next((r["evaluator"] for r in records.values() if r), None)
    return {"tables": out_tables, "cells": cell_list, "evaluator": evaluator}


def write_bench_json(bench: dict, cells: list[Cell], command: str) -> dict:
    assembled = assemble(bench, cells)
    done = [c for c in assembled["cells"] if c["status"] == "done"]
    unlearning_time = {c["unlearn_key"]: c["cost"]["unlearning"]["wall_time_s"] or 0.0 for c in done
                       if c["unlearn_key"] and (c["cost"] or {}).get("unlearning")}
    evaluation_time = {c["key"]: c["cost"]["evaluation"]["wall_time_s"] for c in done}
    record = {
        "bench": bench["name"], "schema_version": 1, "config_file": bench["source"],
        "config": json.loads(json.dumps(bench["raw"], default=str)),
        "command": command, "updated": _now(), "work": _shown(bench["work"], bench),
        "split": bench["split"], "eval_seed": bench["eval_seed"], "bootstrap": bench["bootstrap"],
        "eval_per_class": bench["eval_per_class"], "seeds": bench["seeds"], "level": 0.95,
        "families": {name: {"dataset": f["dataset"], "original": _shown(f["original"], bench),
                            "retrained": [_shown(r, bench) for r in f["retrained"]],
                            "training": {"original": training_record(f["original"]),
                                         "retrained": [training_record(r) for r in f["retrained"]]}}
                     for name, f in bench["families"].items()},
        "methods": {label: {**m, "knobs": m["knobs"]} for label, m in bench["methods"].items()},
        "ablations": {name: {"methods": a["methods"], "seeds": a["seeds"], "vary": a["vary"], "doc": a["doc"],
                             "settings": a["settings"], "tasks": [to_dict(t) for t in a["tasks"]]}
                      for name, a in bench["ablations"].items()},
        "docs": {"unlearn_key": UNLEARN_KEY_DOC, "eval_key": EVAL_KEY_DOC, "intervals": INTERVAL_DOC,
                 "tie_rule": TIE_RULE},
        "progress": {"cells": len({c["key"] for c in assembled["cells"]}), "done": len(evaluation_time),
                     "unlearning_runs": len(unlearning_time),
                     "unlearning_wall_time_s": round(sum(unlearning_time.values()), 1),
                     "evaluation_wall_time_s": round(sum(evaluation_time.values()), 1)},
        "versions": versions(),
        **assembled,
    }
    write_json_atomic(bench["results"] / BENCH_JSON, record)
    return record


def training_record(model_dir) -> dict | None:
    """What training a model folder cost, from its run.json: the denominators of the cost targets (a resumed
    training counts every run's time, not the last one's)."""
    from i2i_unlearn.runs import total_wall_time
    run_json = Path(model_dir) / "run.json"
    if not run_json.is_file():
        return None
    run = read_json(run_json)
    return {"kind": run.get("kind"), "steps": run.get("steps"),
            "wall_time_s": total_wall_time(run) if "wall_time_s" in run else None}


def _shown(path: Path, bench: dict) -> str:
    path = Path(path)
    root = Path(bench["root"]).resolve()
    return str(path.resolve().relative_to(root)) if path.resolve().is_relative_to(root) else str(path)


def command_line() -> str:
    return "i2i-unlearn " + " ".join(sys.argv[1:])
