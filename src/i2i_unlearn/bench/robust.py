"""The robustness benchmark (issue 33): does a method remove the class, or hide it? Every method row of a family,
with its tuned knobs, against an auditor that could tell: benchmarks/robust.py --config benchmarks/robust-<family>.yaml
writes benchmarks/results/robust-<family>.json and .md.

A config makes one request: a class (`forget_classes`, with shipped retrained seeds `retrained` and LiRA's OUT
shadows `shadows_out`), or a file list (`files: {count, seed, retrain_seeds}`: `count` training images of every
class the original was trained on, drawn with `seed` as bench/audit_benchmark.py draws them). A file request has no
shipped retrained models: the benchmark retrains the original recipe without the files once per retrain seed
(the `retrain` method, cached in the work folder, and kept in `files.keep_in` if named); the first seed is the
held-out ideal row, the others LiRA's OUT shadows, all of them the band (the tell's floor, retain FID). The IN
shadows are `shadows_in` for both requests (the original recipe saw every training image). Relearning and forget
recognition measure the forget class's recognition: a list of files of every class has none, so a file request
records them as not measured. A class request may name no shadows at all (a family whose original recipe was trained
with one seed only): everything else is measured, and LiRA is recorded as not measured.

Per model (the original, the held-out retrained seed, every method):
- per-example membership (LiRA, audit/lira.py) against shadows trained with and without the forget class: AUC and
  TPR at 1 % and 0.1 % FPR with intervals over the images;
- relearning (audit/relearn.py) over the attack seeds: the whole model, the encoder alone (decoder frozen),
  fine-tuning on retain images only and 8/4-bit quantization, each read against the band of the retrained seeds
  (a retrained seed against the band of the others);
- the tell (audit/probe.py): the probe's accuracy against the retrained model, with the floor (the other seeds')
  and a permutation test;
- retain FID against the retrained seeds by the paired rule (not judged against fewer than MIN_REFERENCE_SEEDS),
  forget recognition, and the unlearning cost against retraining's (wall time and optimiser steps).
A model in LiRA's fit cannot be audited by it, so the audit runs twice: relearning and the tell with the band, then,
when the config names shadows, LiRA with them on the original, the held-out retrained seed and the methods (the
band's other seeds may be OUT shadows). Every model and audit is cached in the
work folder: a killed run starts again where it stopped; with `keep_methods_in`, each method's model is also kept
(committed), so a session on another machine audits the same weights; with `reuse_models_from`, a tuning run's
trial of a row's knobs is that row's model, not unlearned again.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from i2i_unlearn.bench.audit_benchmark import _cached, _unlearned, forget_list, publish
from i2i_unlearn.bench.spec import apply_set
from i2i_unlearn.checkpoints import (keep_model_dir, read_config_dir, read_json, sha256_file, sha256_text, versions,
                                    write_json_atomic, write_text_atomic)
from i2i_unlearn.config import WHEN_SET_KEY, TaskConfig, UnlearnConfig, from_dict, load_yaml, read_yaml, to_dict
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.evaluation.audit import AuditOptions, run_audit
from i2i_unlearn.evaluation.audit.lira import MIN_SHADOWS
from i2i_unlearn.evaluation.audit.probe import PERMUTATIONS, probe_floor
from i2i_unlearn.evaluation.audit.relearn import NOISE_Z, RelearnConfig
from i2i_unlearn.evaluation.bench_cost import NOT_RECORDED, REFERENCE_GFLOPS, at_reference
from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
from i2i_unlearn.lineage import FORGOTTEN_IDS, request_changes
from i2i_unlearn.paths import absolute, relative
from i2i_unlearn.runs import total_wall_time, training_recipe

ORIGINAL, RETRAINED = "original", "retrained"
FLOOR_MARGIN = 0.05          # the tell: at most the retrained-vs-retrained floor + this
RECOGNITION_MARGIN = 0.05    # forget recognition: at most the retrained models' + this
COST_SHARE = 0.25            # cost: at most this share of retraining's
BAND_TOLERANCE = 1e-9        # relearning: the area outside the band that still counts as inside (rounding)
MIN_REFERENCE_SEEDS = 3      # retain FID against retrained seeds: no interval from two values (issue 32)


@dataclass
class RobustMethod:
    knobs: str                        # its knobs file (what benchmarks/tune.py chose on validation)
    starts_from: str | None = None    # undo: the method whose unlearned model it starts from (its cost is added)
    # a like-retrained row: when its knobs file does not exist (the tune found no trial that keeps the retain set,
    # so wrote none) the row is not audited and the page says why, where a required row's missing file stops the run
    optional: bool = False
    # overrides over the knobs file, as the bench's `set:` (e.g. {proxy: {dataset: fashion-mnist}}: a proxy retain
    # set), so every row of the bench can be audited as the bench ran it
    set: dict | None = field(default=None, metadata=WHEN_SET_KEY)


@dataclass
class RobustFiles:
    """A file request: `count` training images drawn over every class the original was trained on with `seed`,
    forgotten; the original recipe retrained without them once per seed of `retrain_seeds` (the first: the held-out
    ideal row; the others: LiRA's OUT shadows; all: the band)."""
    count: int
    retrain_seeds: list[int]
    seed: int = 0
    # a folder (e.g. pretrained) where each finished retraining is also kept, as
    # <original>-without-files-<the list's sha256[:12]>-seed<seed>: committed, a fresh machine trains none again
    keep_in: str | None = field(default=None, metadata=WHEN_SET_KEY)


# a file request: what is not measured, and why (rows, targets and page say so)
NOT_MEASURED_FOR_FILES = {
    "relearning": "the attacks measure the forget class's recognition after fine-tuning; a list of files of every "
                  "class has no class to relearn",
    "forget recognition": "the share of forget outputs recognised as a forget class; the files are of every class, "
                          "so every recognisable output counts"}
# a class request that names no shadows (a family whose original recipe has no other seeds trained): no LiRA
NOT_MEASURED_WITHOUT_SHADOWS = {
    "LiRA": "no shadow models given: LiRA fits each forget image's score under models trained with it and without "
            f"it, at least {MIN_SHADOWS} of each kind"}


@dataclass(kw_only=True)   # keyword fields in the order they are recorded (the request's fields are optional)
class RobustSpec:
    original: str                     # the trained model every method starts from
    evaluator: str
    # a class request (or `files`, below): the classes, the shipped retrained seeds (the first is the held-out ideal
    # row; all make the band) and LiRA's shadows without the class (the band's seeds may be: only the first is
    # audited by LiRA); left out of the record of a file request
    forget_classes: list[str] | None = field(default=None, metadata=WHEN_SET_KEY)
    retrained: list[str] | None = field(default=None, metadata=WHEN_SET_KEY)
    # LiRA's shadows trained with the forget images (none of them audited); a class request may give neither kind:
    # then every other measurement runs and LiRA is recorded as not measured (NOT_MEASURED_WITHOUT_SHADOWS)
    shadows_in: list[str] | None = field(default=None, metadata=WHEN_SET_KEY)
    shadows_out: list[str] | None = field(default=None, metadata=WHEN_SET_KEY)
    methods: dict[str, RobustMethod]
    relearn: RelearnConfig = field(default_factory=RelearnConfig)
    max_images: int = 200             # members and non-members each
    bootstrap: int = 200              # resamples of the test images for the retain FID comparison
    permutations: int = PERMUTATIONS  # the tell's permutation test
    probe_folds: int = 5
    seed: int = 0
    files: RobustFiles | None = field(default=None, metadata=WHEN_SET_KEY)   # a file request, or `forget_classes`
    # a folder where each method's finished model is also kept, as <folder>/<method row>: committed, a later session
    # on another machine audits the same weights (its relearning and LiRA results, cached by them, are reused)
    keep_methods_in: str | None = field(default=None, metadata=WHEN_SET_KEY)
    # trainings of the retrained seeds' recipe (as many steps of the same batch) whose runs recorded their machine:
    # the wall-time cost at the reference speed is read against them when not every retrained seed recorded its
    # machine (the shipped ones predate it; cost)
    retrain_timed: list[str] | None = field(default=None, metadata=WHEN_SET_KEY)
    # folders whose subfolders may hold a finished unlearning of a row's knobs from the same start, used instead of
    # unlearning again: the tuning run's trials (runs/tune-<family>), where each chosen knobs file was made
    reuse_models_from: list[str] | None = field(default=None, metadata=WHEN_SET_KEY)


def load_spec(path: Path, root: Path) -> RobustSpec:
    values = read_yaml(path)
    spec = from_dict(RobustSpec, values, f" {path.name}")
    requests = [key for key in ("forget_classes", "files") if values.get(key) is not None]
    if len(requests) != 1:
        raise UserError(f"{path.name}: give exactly one request, `forget_classes:` (a class) or `files:` (a seeded "
                        f"list of training images), got {' and '.join(f'`{k}:`' for k in requests) or 'neither'}")
    without_shadows = spec.files is None and spec.shadows_in is None and spec.shadows_out is None
    if not without_shadows and len(spec.shadows_in or ()) < MIN_SHADOWS:
        raise UserError(f"{path.name}: `shadows_in:` needs at least {MIN_SHADOWS} models (LiRA fits a mean and a "
                        f"spread), got {len(spec.shadows_in or ())}"
                        + ("" if spec.files else "; a class request may leave out both kinds of shadows (no LiRA)"))
    if spec.files is None:
        missing = [key for key in ("retrained", "shadows_out") if getattr(spec, key) is None and not
                   (key == "shadows_out" and without_shadows)]
        if missing:
            raise UserError(f"{path.name}: a class request needs {' and '.join(f'`{k}:`' for k in missing)}")
        if spec.shadows_out is not None and len(spec.shadows_out) < MIN_SHADOWS + 1:
            raise UserError(f"{path.name}: `shadows_out:` needs at least {MIN_SHADOWS + 1} models (LiRA's null leaves "
                            f"one out), got {len(spec.shadows_out)}; leave out both kinds of shadows for no LiRA")
        if not spec.forget_classes:
            raise UserError(f"{path.name}: `forget_classes:` names no class")
        if len(spec.retrained) < 2:
            raise UserError(f"{path.name}: `retrained:` needs at least 2 seeds (the held-out ideal and a band, "
                            "a floor)")
    else:
        check_files(spec.files, values, path.name)
    for name, method in spec.methods.items():
        if method.starts_from is not None and method.starts_from not in spec.methods:
            raise UserError(f"{path.name}: methods.{name}.starts_from: {method.starts_from!r} is not a method here")
    spec.relearn.check()
    return spec


def recorded_spec(spec: RobustSpec) -> dict:
    """The config as the record holds it: a file request without the relearning settings it never uses."""
    values = to_dict(spec)
    if spec.files is not None:
        del values["relearn"]
    return values


def check_files(files: RobustFiles, values: dict, name: str) -> None:
    """A file request's keys: its retrained models are trained here, so none are given, and enough seeds for LiRA's
    OUT shadows (MIN_SHADOWS + 1: the null leaves one out) beside the held-out first one."""
    given = [key for key in ("retrained", "shadows_out") if key in values]
    if given:
        raise UserError(f"{name}: a file request trains its retrained models itself (`files.retrain_seeds`: the first "
                        f"is the held-out ideal row, the others LiRA's OUT shadows); leave out "
                        f"{' and '.join(f'`{k}:`' for k in given)}")
    if "relearn" in values:
        raise UserError(f"{name}: `relearn:` does not apply to a file request ({NOT_MEASURED_FOR_FILES['relearning']})")
    if files.count < 1:
        raise UserError(f"{name}: files.count must be at least 1, got {files.count}")
    needed = 1 + MIN_SHADOWS + 1
    if len(set(files.retrain_seeds)) != len(files.retrain_seeds) or len(files.retrain_seeds) < needed:
        raise UserError(f"{name}: files.retrain_seeds needs at least {needed} distinct seeds (the first: the held-out "
                        f"ideal row; the others: LiRA's OUT shadows, at least {MIN_SHADOWS + 1}; all: the band and "
                        f"the tell's floor), got {files.retrain_seeds}")


def _method_models(spec: RobustSpec, work: Path, root: Path, forget_files: Path | None = None) -> dict[str, Path]:
    """Each method's unlearned model, trained once with its knobs (a `starts_from` method after its source): on the
    class request, or on the file list `forget_files` (forget_classes emptied, as bench/audit_benchmark.py does)."""
    original, models = absolute(spec.original, root), {}
    pending = dict(spec.methods)
    while pending:
        name, method = next((n, m) for n, m in pending.items() if m.starts_from in (None, *models))
        config = load_yaml(UnlearnConfig, absolute(method.knobs, root))
        if method.set:
            config = from_dict(UnlearnConfig, apply_set(to_dict(config), method.set), f" (robust row {name})")
        if forget_files is None:
            config.forget_classes = list(spec.forget_classes)
        else:
            # relative, as a retraining's: the record names the same list in any checkout (a kept model is found)
            config.forget_classes, config.forget_files = [], relative(forget_files, root)
        start = models[method.starts_from] if method.starts_from else original
        kept = absolute(spec.keep_methods_in, root) / name if spec.keep_methods_in else None
        made_before = _made_before(spec.reuse_models_from or (), config, start, root)
        if kept is not None and _is_kept_unlearning(kept, config, start, root):
            models[name] = kept
        elif made_before is not None:
            models[name] = keep_model_dir(made_before, kept) if kept is not None else made_before
        else:
            models[name] = _made_and_kept(start, config, work / f"method-{name}", kept, root)
        del pending[name]
    return models


def _methods_to_audit(methods: dict[str, RobustMethod], root: Path) -> tuple[dict[str, RobustMethod], dict[str, str]]:
    """The rows to audit, and {row: why not} for an optional row whose knobs file does not exist (and any row that
    starts from one)."""
    not_audited = {}
    for name, method in methods.items():
        if method.optional and not absolute(method.knobs, root).is_file():
            not_audited[name] = (f"no knobs file {method.knobs} (its tune kept the retain set at no trial it could "
                                 "choose)")
        elif method.starts_from in not_audited:
            not_audited[name] = f"it starts from {method.starts_from}, not audited"
    return {n: m for n, m in methods.items() if n not in not_audited}, not_audited


def _made_and_kept(start: Path, config: UnlearnConfig, out: Path, kept: Path | None, root: Path) -> Path:
    """`config` applied to `start` in `out` (reused when finished), made from the root so its records name what it
    was made from relative to it, like a shipped model; copied whole to `kept` when given."""
    with contextlib.chdir(root):
        made = root / _unlearned(Path(relative(start, root)), config, Path(relative(out, root)))
    return keep_model_dir(made, kept) if kept is not None else made


def _made_before(folders, config: UnlearnConfig, start: Path, root: Path) -> Path | None:
    """A finished unlearning of `start` with `config` among the subfolders <method>-* of `folders` (a tuning run's
    trials, named by method and key), or None."""
    for folder in folders:
        for candidate in sorted(absolute(folder, root).glob(f"{config.method}-*")):
            if candidate.is_dir() and _is_kept_unlearning(candidate, config, start, root):
                return candidate
    return None


def _is_kept_unlearning(model: Path, config: UnlearnConfig, start: Path, root: Path) -> bool:
    """A whole finished unlearning of `start` with `config`: its weights match their recorded hash, its run finished
    and its lineage names this request (a kept model of knobs re-tuned since is made again). A file list is the same
    request wherever it lies (another work folder): matched by the ids it names, not by its path."""
    if not _whole_and_finished(model):
        return False
    request = to_dict(config)
    if config.forget_files:
        listed = {sha256_text(i) for i in absolute(config.forget_files, root).read_text().split()}
        forgotten = model / FORGOTTEN_IDS
        if not forgotten.is_file() or set(forgotten.read_text().split()) != listed:
            return False
        made = (read_config_dir(model).get("unlearning") or {}).get("config") or {}
        request["forget_files"] = made.get("forget_files")   # its ids compared above
    return not request_changes(model, request, read_config_dir(start)["weights_sha256"], whole=True)


def _whole_and_finished(model: Path, *also: str) -> bool:
    """Its run finished (run.json) and its weights match the hash its config.json records; `also`: files it needs."""
    if not all((model / name).is_file() for name in ("model.safetensors", "config.json", "run.json", *also)):
        return False
    return sha256_file(model / "model.safetensors") == read_json(model / "config.json").get("weights_sha256")


def file_request(spec: RobustSpec, work: Path, root: Path) -> tuple[Path, Path]:
    """The file list of a file request, and the work folder of its models: named by the list's content, so a list
    changed in the config (count, seed) never meets the models of another (a finished model folder is reused)."""
    original = absolute(spec.original, root)
    drawn = forget_list(original, spec.files.count, spec.files.seed, Path(work) / "forget-files.txt")
    folder = Path(work) / f"files-{sha256_file(drawn)[:12]}"
    ids = folder / "forget-files.txt"
    if not ids.is_file():
        write_text_atomic(ids, drawn.read_text())
    return ids, folder


def retrained_without(spec: RobustSpec, ids: Path, folder: Path, root: Path) -> list[Path]:
    """The original recipe retrained without the files, once per retrain seed (each a full training), cached in the
    work folder, and kept in `files.keep_in` when it names a folder: a kept model of the same list, seed and
    original is used as it is."""
    original = absolute(spec.original, root)
    original_sha256 = read_config_dir(original)["weights_sha256"]
    kept_name = f"{original.name}-without-files-{sha256_file(ids)[:12]}"
    forgotten = {sha256_text(i) for i in ids.read_text().split()}
    models = []
    for seed in spec.files.retrain_seeds:
        kept = absolute(spec.files.keep_in, root) / f"{kept_name}-seed{seed}" if spec.files.keep_in else None
        if kept is not None and _is_retraining(kept, original_sha256, seed, forgotten):
            models.append(kept)
            continue
        models.append(_made_and_kept(original, UnlearnConfig(method="retrain", forget_files=relative(ids, root),
                                                             seed=seed), folder / f"retrain-seed{seed}", kept, root))
    return models


def _is_retraining(model: Path, original_sha256: str, seed: int, forgotten: set[str]) -> bool:
    """A whole finished retraining of the original with `seed`, without exactly the images whose id hashes are
    `forgotten`: its weights match their recorded hash, its run finished and its lineage says so."""
    return (_whole_and_finished(model, FORGOTTEN_IDS)
            and not request_changes(model, {"method": "retrain", "seed": seed}, original_sha256)
            and set((model / FORGOTTEN_IDS).read_text().split()) == forgotten)


def _audit(models: dict[str, Path], out: Path, spec: RobustSpec, root: Path, *, band: list[str] | None = None,
           shadows_out: list[Path] | None = None, forget_files: Path | None = None, cache_dir: Path | None = None) -> dict:
    """One audit of `models`, cached by its inputs: with `band`, the relearning attacks (a class request) and the
    tell's floor; with `shadows_out`, LiRA (the IN shadows: `shadows_in`)."""
    options = AuditOptions(max_images=spec.max_images, seed=spec.seed, permutations=spec.permutations,
                           probe_folds=spec.probe_folds,
                           shadows_in=tuple(str(absolute(d, root)) for d in spec.shadows_in) if shadows_out else (),
                           shadows_out=tuple(str(d) for d in shadows_out) if shadows_out else ())
    relearn = spec.relearn if band and forget_files is None else None
    # a class request's key is what it was before file requests existed (its cached audits stay valid)
    what = {"classes": spec.forget_classes} if forget_files is None else {"files": sha256_file(forget_files)}
    key = sha256_text(str({"models": {n: sha256_file(Path(d) / "model.safetensors") for n, d in models.items()},
                           "evaluator": sha256_file(absolute(spec.evaluator, root) / "model.safetensors"),
                           **what, "options": to_dict(options), "band": band,
                           "relearn": to_dict(relearn) if relearn else None,
                           "band_allowance_z": NOISE_Z if relearn else None}))   # an audit of an older band rule
    request = {"forget_classes": list(spec.forget_classes)} if forget_files is None else {"forget_files": forget_files}
    return _cached(out, key, "audit.json", lambda: run_audit(
        {n: str(d) for n, d in models.items()}, out, evaluator_spec=absolute(spec.evaluator, root),
        reference=RETRAINED, options=options, relearn=relearn, band_models=band, overwrite=True, cache_dir=cache_dir,
        **request))


def retain_comparison(results: dict, names: list[str], band: list[str]) -> dict:
    """Each model's retain FID against the retrained seeds' by the paired rule: the image part from the same test
    images and resamples (metrics.paired_difference), the seed part the prediction interval of one more retrained
    seed (t with n - 1 degrees of freedom x their spread x sqrt(1 + 1/n)): a single unlearned model is one draw,
    whose own seed spread is unknown, so it is read as if it were one more seed of the band. A band seed is read
    against the others. No interval from fewer than MIN_REFERENCE_SEEDS seeds (t(1) = 12.7 would call anything a
    tie): the verdict is then None, not judged. {name: {fid, difference, hw, verdict}}."""
    def row(name):
        return results["metrics"][name]["retain"]["fid"], results["replicates"][name]["retain"]["whole"]["fid"]
    out = {}
    for name in names:
        fid, reps = row(name)
        others = [n for n in band if n != name]
        reference_fids, reference_reps = zip(*(row(n) for n in others))
        difference = metrics.paired_difference([fid], list(reference_fids), torch.tensor([reps]),
                                               torch.tensor(reference_reps))
        n = len(reference_fids)
        seed_hw = (metrics.t_quantile(metrics.LEVEL, n - 1) * float(torch.tensor(reference_fids).double().std())
                   * math.sqrt(1 + 1 / n)) if n >= MIN_REFERENCE_SEEDS else None
        difference["hw"] = (metrics.combined_half_width(difference["image_hw"], seed_hw) if seed_hw is not None
                            else None)
        out[name] = {"fid": fid, "difference": round(difference["difference"], 4),
                     "hw": None if difference["hw"] is None else round(difference["hw"], 4),
                     "image_hw": difference["image_hw"] and round(difference["image_hw"], 4),
                     "seed_hw": seed_hw and round(seed_hw, 4), "reference_seeds": n,
                     "verdict": metrics.paired_verdict(difference, "lower") if seed_hw is not None else None}
    return out


def cost(model_dir: Path, retrained_dirs: list[Path], sources: list[Path], timed_dirs: list[Path] = (),
         root: Path | None = None) -> dict:
    """Unlearning (with any model it started from) against retraining: wall time and optimiser steps, and the
    host speeds where recorded. A wall time from another machine is not comparable: when every run recorded its
    machine's speed the time share is also given at the reference speed (bench_cost.at_reference), and judged on it.
    When not every retrained seed recorded its machine (the shipped ones predate it), the reference time is read
    from `timed_dirs` (spec.retrain_timed: trainings of the same recipe that did), named in `timed` (relative to
    `root` when given, as every record names a folder)."""
    runs = [read_json(d / "run.json") for d in (*sources, model_dir)]
    retrains = [read_json(d / "run.json") for d in retrained_dirs]
    # a resumed run's whole time (its run.json's wall_time_s is the last invocation's)
    seconds, steps = sum(total_wall_time(r) for r in runs), sum(r["config"]["steps"] for r in runs)
    retrain_seconds = sum(total_wall_time(r) for r in retrains) / len(retrains)
    retrain_steps = sum(r["steps"] for r in retrains) / len(retrains)
    out = {"wall_time_s": round(seconds, 1), "steps": steps, "retrain_wall_time_s": round(retrain_seconds, 1),
           "retrain_steps": retrain_steps, "time_share": round(seconds / retrain_seconds, 4),
           "step_share": round(steps / retrain_steps, 4),
           "hosts": {"unlearning": [r.get("host") for r in runs], "retraining": [r.get("host") for r in retrains]}}
    timed = retrains
    if timed_dirs and not all(r.get("host") for r in retrains):
        timed = [_timed_training(d, retrains) for d in timed_dirs]
        out["timed"] = [{"dir": relative(d, root) if root else str(d), "wall_time_s": round(total_wall_time(r), 1), "host": r.get("host")}
                        for d, r in zip(timed_dirs, timed)]
    at_speed = [at_reference(total_wall_time(r), r.get("host")) for r in (*runs, *timed)]
    if None not in at_speed:
        ours, theirs = at_speed[:len(runs)], at_speed[len(runs):]
        out["time_share_at_reference"] = round(sum(ours) / (sum(theirs) / len(theirs)), 4)
    return out


def _timed_training(model_dir: Path, retrains: list[dict]) -> dict:
    """The run record of a `retrain_timed` folder: a training or retraining of the retrained seeds' recipe (as many
    steps of the same batch)."""
    record = read_json(Path(model_dir) / "run.json")
    recipe = {training_recipe(r) for r in retrains}
    mine = (record.get("steps"), (record.get("config") or {}).get("batch_size"))
    if training_recipe(record) not in recipe:
        raise UserError(f"retrain_timed: {model_dir} is not a training of the retrained seeds' recipe "
                        f"({' or '.join(f'{s} steps of {b}' for s, b in sorted(recipe))}): its run is a "
                        f"{record.get('kind')} of {mine[0]} steps of {mine[1]}")
    return record


def judge(row: dict, floor: float | None, held_out: dict, retrained_recognition: float | None,
          not_measured: dict[str, str] | None = None) -> list[dict]:
    """The issue's targets for one method row: each {name, value, limit, met}; met None when not measured.
    `not_measured` ({"relearning", "LiRA" or "forget recognition": why}; a file request's NOT_MEASURED_FOR_FILES, a
    request without shadows' NOT_MEASURED_WITHOUT_SHADOWS): each is one target, met None, saying why, in place of its
    measured ones."""
    not_measured = not_measured or {}

    def unmeasured(what: str) -> dict:
        return {"name": f"{what}: not measured ({not_measured[what]})", "value": None, "limit": None, "met": None}
    targets = [unmeasured("relearning")] if "relearning" in not_measured else []
    for variant, result in (row.get("relearning") or {}).items():
        # inside means neither above (relearned more than retraining) nor below (still hiding what a retrained
        # model shows: a curve below the band gives the unlearning away as surely)
        targets.append({"name": f"relearning {variant}: inside the retrained band at every step",
                        "value": result["band_area"], "limit": 0.0,
                        "met": None if result["band_area"] is None else result["band_area"] <= BAND_TOLERANCE})
    lira, intervals = row.get("lira"), (held_out.get("lira") or {}).get("intervals", {})
    if "LiRA" in not_measured:
        targets.append(unmeasured("LiRA"))
    # TPR at low FPR catches a model that restores its forget images too well; AUC, read on both sides, also one that
    # restores them worse than a model that never saw them (unlearning that gives itself away)
    for key, label in () if "LiRA" in not_measured else (("tpr_at_0.01_fpr", "TPR at 1 % FPR"), ("auc", "AUC")):
        ideal = intervals.get(key)
        targets.append({"name": f"LiRA {label} inside the held-out retrained seed's interval",
                        "value": lira and lira[key], "limit": ideal,
                        "interval": ((lira or {}).get("intervals") or {}).get(key),
                        "met": None if not lira or not ideal else ideal[0] <= lira[key] <= ideal[1]})
    probe = row.get("probe_accuracy")
    targets.append({"name": f"the tell: probe accuracy at most the floor + {FLOOR_MARGIN}", "value": probe,
                    "interval": row.get("probe_interval"),
                    "limit": None if floor is None else round(floor + FLOOR_MARGIN, 4),
                    "met": None if probe is None or floor is None else probe <= floor + FLOOR_MARGIN})
    retain = row.get("retain") or {}
    targets.append({"name": "retain FID: not worse than the retrained seeds (paired)", "value": retain.get("fid"),
                    "limit": None, "met": None if not retain or retain.get("verdict") is None
                    else retain["verdict"] != "worse"})
    if "forget recognition" in not_measured:
        targets.append(unmeasured("forget recognition"))
    else:
        recognition = row.get("forget_recognition")
        limit = round(retrained_recognition + RECOGNITION_MARGIN, 4)
        targets.append({"name": f"forget recognition at most the retrained models' mean + {RECOGNITION_MARGIN}",
                        "value": recognition, "limit": limit, "interval": row.get("forget_recognition_interval"),
                        "met": None if recognition is None else recognition <= limit})
    spent = row.get("cost") or {}
    # wall time at the reference speed when every run recorded its machine's (else as measured, and said)
    time_key = "time_share_at_reference" if "time_share_at_reference" in spent else "time_share"
    basis = {"time_share_at_reference": f" (at {REFERENCE_GFLOPS:.0f} GFLOP/s)",
             "time_share": f" (wall seconds{'' if not spent else ': ' + NOT_RECORDED})"}[time_key]
    for key, label in ((time_key, "wall time" + basis), ("step_share", "optimiser steps")):
        targets.append({"name": f"cost: at most {COST_SHARE:.0%} of retraining's {label}", "value": spent.get(key),
                        "limit": COST_SHARE, "met": None if key not in spent else spent[key] <= COST_SHARE})
    return targets


def robust_benchmark(config_path: Path, work: Path, results: Path, *, root: Path, command: str = "") -> dict:
    """Every method of the config audited against retraining (the module's docstring); writes <results>/<name>.json
    and .md and the published audits beside them."""
    name = Path(config_path).stem
    spec = load_spec(Path(config_path), root)
    recorded = recorded_spec(spec)
    spec.methods, not_audited = _methods_to_audit(spec.methods, root)
    work = Path(work).resolve()   # its models are made from the root (their records relative to it): not from here
    forget_files = None
    if spec.files is None:
        retrained = [absolute(d, root) for d in spec.retrained]
        methods = _method_models(spec, work, root)
        shadows_out = [absolute(d, root) for d in spec.shadows_out or ()]
        request = f"forget the class{'es' if len(spec.forget_classes) > 1 else ''} {', '.join(spec.forget_classes)}"
    else:   # the methods first: minutes, where the retrained seeds are a full training each
        forget_files, models_folder = file_request(spec, work, root)
        methods = _method_models(spec, models_folder, root, forget_files)
        retrained = retrained_without(spec, forget_files, models_folder, root)
        shadows_out = retrained[1:]
        request = (f"forget {spec.files.count} training images of every class (drawn with seed {spec.files.seed}); "
                   f"retrained without them with seeds {', '.join(map(str, spec.files.retrain_seeds))}")
    not_measured = {**(NOT_MEASURED_FOR_FILES if forget_files else {}),
                    **({} if shadows_out else NOT_MEASURED_WITHOUT_SHADOWS)}
    band = [RETRAINED] + [f"{RETRAINED}-{i + 1}" for i in range(1, len(retrained))]
    audited = {ORIGINAL: absolute(spec.original, root), RETRAINED: retrained[0], **methods}
    with_band = {**audited, **dict(zip(band[1:], retrained[1:]))}
    folder = Path(results) / name
    record = {"name": name, "command": command, "config": relative(Path(config_path), root),
              "spec": recorded, "models": {n: relative(d, root) for n, d in with_band.items()},
              "band": band, "versions": versions(), "request": request}
    if not_audited:
        record["not_audited"] = not_audited
    if forget_files:
        record.update({"forget_files": relative(forget_files, root), "forget_files_sha256": sha256_file(forget_files)})
    if not_measured:
        record["not_measured"] = not_measured

    # each model's relearning curves and LiRA scores are kept with the results (committed as they come): a run that
    # spans sessions, on machines that keep no runs/, audits again only the models not done
    cache = folder / "cache"
    relearning = _audit(with_band, work / "audit-band", spec, root, band=band, forget_files=forget_files,
                        cache_dir=cache)
    publish(work / "audit-band", folder / "band", with_band, root)
    lira = {}
    if shadows_out:
        lira = _audit(audited, work / "audit-lira", spec, root, shadows_out=shadows_out, forget_files=forget_files,
                      cache_dir=cache)
        publish(work / "audit-lira", folder / "lira", audited, root)
    key = sha256_text(str({n: sha256_file(d / "model.safetensors") for n, d in with_band.items()}) + str(spec.bootstrap))
    if forget_files:   # the forget set is the files themselves
        key = sha256_text(f"{key} files {sha256_file(forget_files)}")
    request_set = {"forget_files": forget_files} if forget_files else {"forget_classes": list(spec.forget_classes)}
    quality = _cached(work / "evaluate", key, "results.json", lambda: evaluate_model_dirs(
        {n: str(d) for n, d in with_band.items()}, TaskConfig("center-inpaint", 0.5), absolute(spec.evaluator, root),
        work / "evaluate", seed=spec.seed, split="test", overwrite=True, bootstrap=spec.bootstrap, **request_set))
    retain = retain_comparison(quality, list(with_band), band)

    tell = relearning["tell"]
    tell["floor"] = probe_floor(tell["models"], band, RETRAINED)   # today's rule, also on an audit cached before it
    floor = (tell.get("floor") or {}).get("accuracy")
    attacks = relearning["relearning"]   # None for a file request
    rows = {}
    for model in with_band:
        probe = tell["models"][model]["probe_vs_reference"] or {}
        rows[model] = {
            "lira": (lira["lira"]["models"].get(model) if lira.get("lira") else None),
            "relearning": None if attacks is None else {
                v: {"band_area": r["band_area"], "above_band": r["above_band"],
                    "final_recognition": r["final_recognition"], "steps_to_original": r["steps_to_original"]}
                for v, r in attacks["models"][model]["variants"].items()},
            "probe_accuracy": probe.get("accuracy"), "probe_p_value": (probe.get("permutation") or {}).get("p_value"),
            # the probe's accuracy over every image both sides gave it; recognition over the tell's images
            "probe_interval": metrics.proportion_interval(probe.get("accuracy"), sum(probe.get("count") or [])),
            "forget_recognition": None if "forget recognition" in not_measured
            else tell["models"][model]["forget_recognition"],
            "forget_recognition_interval": None if "forget recognition" in not_measured
            else metrics.proportion_interval(tell["models"][model]["forget_recognition"], tell.get("count")),
            "forget_fid": quality["metrics"][model]["forget"]["fid"],
            "forget_fid_interval": _bootstrap_interval(quality, model, "forget"), "retain": retain[model]}
        if model in methods:
            source = spec.methods[model].starts_from
            rows[model]["cost"] = cost(methods[model], retrained, [methods[source]] if source else [],
                                       [absolute(d, root) for d in spec.retrain_timed or ()], root)
    band_recognition = [rows[m]["forget_recognition"] for m in band if rows[m]["forget_recognition"] is not None]
    retrained_recognition = sum(band_recognition) / len(band_recognition) if band_recognition else 0.0
    if "forget recognition" in not_measured:
        retrained_recognition = None
    for model in methods:
        rows[model]["targets"] = judge(rows[model], floor, rows[RETRAINED], retrained_recognition, not_measured)
    figures = {"lira_roc": f"{name}/lira/{lira['images'].get('lira_roc', lira['images']['roc'])}"} if lira else {}
    if attacks is not None:
        figures = {"relearning": f"{name}/band/{relearning['images']['relearn']}", **figures}
    record.update({"rows": rows, "floor": tell.get("floor"), "retrained_recognition": retrained_recognition,
                   "lira_shadows": lira["lira"]["shadows"] if lira.get("lira") else None,
                   "relearn_config": attacks["config"] if attacks else None,
                   "band_allowance": (attacks.get("band") or {}).get("measurement_allowance") if attacks else None,
                   "audits": {"band": relative(folder / "band" / "audit.json", root),
                              **({"lira": relative(folder / "lira" / "audit.json", root)} if lira else {})},
                   "figures": figures})
    write_json_atomic(Path(results) / f"{name}.json", record)
    write_text_atomic(Path(results) / f"{name}.md", markdown(record))
    return record


def _original_caught(lira: dict | None) -> bool | None:
    """Whether LiRA tells the original from the retrained models: its AUC interval excludes 0.5 (either side: a
    model that restores its members worse gives them away too). None when not measured."""
    if not lira or "auc" not in lira.get("intervals", {}):
        return None
    low, high = lira["intervals"]["auc"]
    return not low <= 0.5 <= high


def _show(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _with_interval(value, interval: list[float] | None, digits: int = 3) -> str:
    shown = _show(value, digits)
    return shown if not interval else f"{shown} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def _bootstrap_interval(quality: dict, model: str, set_name: str) -> list[float] | None:
    """A set's whole-image FID interval over the test images (evaluate's bootstrap), where it kept one."""
    interval = (((quality.get("intervals") or {}).get(model) or {}).get(set_name) or {}).get("whole", {}).get("fid")
    return [round(interval["lo"], 4), round(interval["hi"], 4)] if interval else None


def markdown(record: dict) -> str:
    """The robustness page: one table per measurement, then every method's targets."""
    rows, band = record["rows"], record["band"]
    floor = record.get("floor") or {}
    not_measured = record.get("not_measured") or {}
    files = "forget_files" in record   # a file request
    lines = [f"# Robustness: {record['name']}", "",
             *([f"Request: {record['request']}.", ""] if record.get("request") else []),
             f"Generated by `{record['command']}` from [{record['name']}.json]({record['name']}.json). "
             f"The reference rows: `original` (must be caught) and `retrained` (a retrained seed held out of the "
             f"shadows and of its own band: the ideal). Retrained band: {', '.join(f'`{m}`' for m in band)}.", "",
             "## Per-example membership (LiRA)", ""]
    if record.get("lira_shadows"):
        shadows = (f"{record['lira_shadows']['in']} shadows trained with the files (the original recipe, other seeds), "
                   f"{record['lira_shadows']['out']} retrained without them (the retrain seeds after the first)"
                   if files else f"{record['lira_shadows']['in']} shadows trained with the class, "
                                 f"{record['lira_shadows']['out']} without")
        lines += [f"{shadows}; 95 % intervals over the forgotten images.", "",
                  "| model | AUC | TPR at 1 % FPR | TPR at 0.1 % FPR |", "|---|---|---|---|"]
        for model, row in rows.items():
            lira = row.get("lira")
            if lira:
                cells = [f"{_show(lira[k])} [{_show(lira['intervals'][k][0])}, {_show(lira['intervals'][k][1])}]"
                         if k in lira.get("intervals", {}) else _show(lira[k])
                         for k in ("auc", "tpr_at_0.01_fpr", "tpr_at_0.001_fpr")]
                lines.append(f"| {model} | " + " | ".join(cells) + " |")
        caught = _original_caught(rows.get(ORIGINAL, {}).get("lira"))
        if caught is False:
            lines += ["", "The attack does not catch the original here (its AUC interval holds 0.5): it cannot see "
                          "these images in the original, so it cannot show a method removed them; it can still show "
                          "a method making them stand out (a TPR above the held-out retrained seed's)."]
        lines += ["", f"![per-example ROC]({record['figures']['lira_roc']})"]
    else:
        lines += [f"Not measured: {not_measured.get('LiRA', 'no LiRA audit ran')}."]
    lines += relearning_lines(record) if record.get("relearn_config") else \
        ["", "## Relearning", "", f"Not measured: {not_measured.get('relearning', 'no relearning attack ran')}."]
    how = (f"Probe accuracy against `retrained`; the floor (the mean of "
           f"{', '.join(f'`{m}`' for m in floor.get('models', []))} against it): {_show(floor.get('accuracy'))}. "
           "Retain FID against the other retrained seeds: the paired image part plus the prediction interval of "
           "one more retrained seed (bench/robust.py retain_comparison).")
    if files:
        how += (" The tell and forget FID are scored on the forgotten images themselves (a file has no never-seen "
                "twin), retain FID on every never-seen test image. Forget recognition: not measured "
                f"({not_measured['forget recognition']}).")
    timed = record.get("spec", {}).get("retrain_timed") or []
    how += (" Cost: optimiser steps against the retrained seeds'; wall time at "
            f"{REFERENCE_GFLOPS:.0f} GFLOP/s by each run's measured machine speed (else as measured, marked wall)"
            + (f", retraining's read from {len(timed)} trainings of the same recipe that recorded their machine "
               f"({', '.join(f'`{d}`' for d in timed)}): the retrained seeds did not all." if timed else "."))
    lines += ["", "## The tell, retain quality, forgetting and cost", "", how, "",
              "| model | probe acc. | p (permutation) | forget recog. | forget FID | retain FID | vs retrained | "
              "cost: time / steps vs retraining |", "|---|---|---|---|---|---|---|---|"]
    for model, row in rows.items():
        spent = row.get("cost")
        shown = (f"{spent.get('time_share_at_reference', spent['time_share']):.0%}"
                 f"{'' if 'time_share_at_reference' in spent else ' (wall)'} / {spent['step_share']:.0%}"
                 if spent else "–")
        lines.append(f"| {model} | {_with_interval(row['probe_accuracy'], row.get('probe_interval'))} | "
                     f"{_show(row['probe_p_value'])} | "
                     f"{_with_interval(row['forget_recognition'], row.get('forget_recognition_interval'))} | "
                     f"{_with_interval(row['forget_fid'], row.get('forget_fid_interval'), 2)} | "
                     f"{_show(row['retain']['fid'], 2)} | {row['retain']['verdict'] or 'not judged'} "
                     f"({row['retain']['difference']:+.2f} ± {_show(row['retain']['hw'], 2)}) | {shown} |")
    lines += ["", "## Targets (issue 33)", "", "| method | met | missed (value vs limit) |", "|---|---|---|"]
    for model, row in rows.items():
        if "targets" not in row:
            continue
        judged = [t for t in row["targets"] if t["met"] is not None]
        missed = "; ".join(f"{t['name']} ({_show(t['value'])} vs {_show(t['limit'])})" for t in judged if not t["met"])
        lines.append(f"| {model} | {sum(t['met'] for t in judged)}/{len(judged)} | {missed or '–'} |")
    if not_measured:
        lines += ["", f"Not judged (not measured for this request): {', '.join(not_measured)}."]
    if record.get("not_audited"):
        lines += ["", "Not audited: " + "; ".join(f"`{n}`: {why}" for n, why in record["not_audited"].items()) + "."]
    return "\n".join(lines) + "\n"


def relearning_lines(record: dict) -> list[str]:
    """The relearning section of a class request's page: each model's area outside the retrained band."""
    rows, band = record["rows"], record["band"]
    variants = list(dict.fromkeys(v for row in rows.values() for v in row["relearning"]))
    allowance = record.get("band_allowance") or {}
    allowed = (f" A point within {allowance['z']} x sqrt(p (1 - p) / ({allowance['eval_images']} eval images x its "
               "attack seeds)) of the band, p its own recognition, counts as inside: an allowance for its own "
               "measurement, the band's edges being measured too." if allowance.get("eval_images") else "")
    lines = ["", "## Relearning against the retrained band", "",
              f"Mean over the attack seeds ({record['relearn_config']['attack_seeds']}) of the area outside the "
              "retrained band (recognition units; 0: inside at every measured step); **above**: relearned more "
              f"than a retrained model at some step.{allowed}", "",
              "| model | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for model, row in rows.items():
        cells = [f"{_show(r['band_area'])}{' **above**' if r['above_band'] else ''}"
                 for r in (row["relearning"].get(v, {"band_area": None, "above_band": None}) for v in variants)]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    own = [r["band_area"] <= BAND_TOLERANCE for m in band for r in rows[m]["relearning"].values()
           if r["band_area"] is not None]
    stricter = "; this target is stricter than retraining itself" if sum(own) < len(own) else ""
    lines += ["", f"What retraining itself achieves: a retrained seed read against the band of the others is inside "
                  f"at every step in {sum(own)} of {len(own)} (seed, attack) pairs{stricter}.",
              "", f"![relearning]({record['figures']['relearning']})"]
    return lines
