"""Choose unlearning knobs on the validation split, with the same budget for every method.

A tuning config (benchmarks/tune-<family>.yaml) declares the model, the base knobs (UnlearnConfig's
defaults, i.e. the released code's, plus any override the config states), the methods, ONE grid that every
method is tuned over (the same knobs, values and steps: a grid cannot favour a method) and one selection
rule, read on the upper end of the validation retain FID ratio's interval (a point estimate on a small validation
sample picks the luckiest trial: the winner's curse), paired with the original over the same resamples (an unpaired
upper end counts the noise of which images were drawn, common to both, against the trial alone).
With a constant learning rate, a trial that only adds steps continues its shorter trial
(CONTINUATION_DOC). With `halving: {keep: K}` (successive halving, HALVING_DOC) only the best share K of
the chains, ranked by the rule on their shorter trial, continue to the next length: the same pruning for
every method, so the budget stays equal while the grid grows (without it, every chain runs to the end). Each trial
unlearns with one point of its method's grid and is scored on the validation images only (center
inpainting 1/2 by default); every trial is kept in the record (benchmarks/tune.py writes
benchmarks/results/tune-<name>.json), misses included, and a finished trial is never re-run.
The rule picks one trial per method; its knobs are written to the method's config file. Given the model
retrained without the forget classes (`retrained:`), a second choice is recorded from the same trials (with
`like_retrained_max_step_share`, those within that share of retraining's steps), the one that forgets most like it
(LIKE_RETRAINED_DOC), and written to `like_retrained_dir:` if the config names one. Trials are made from the root,
so their records name their start relative to it and a robustness audit can keep one as its model.
A method that starts from an unlearned model (`starts_from: {undo: ours-substitute}`) is tuned after its start,
from the start's chosen trial, over the same grid; a changed start choice makes new trials.

Only `score_test` reads test images: it scores each method's chosen trial once and records it.
"""
from __future__ import annotations

import contextlib
import functools
import json
import shutil
import time
from pathlib import Path

import torch
import yaml

from i2i_unlearn.bench.grid import (
    HALVING_DOC,
    LIKE_RETRAINED_DOC,
    RULE_DOC,
    chains,
    choose,
    choose_like_retrained,
    grid_points,
    halving_keep,
    planned_steps,
    ratios,
    successive_halving,
)
from i2i_unlearn.checkpoints import (CHECKPOINTS, CONFIG_NAME, read_config_dir, read_json, sha256_json, versions,
                                     write_json_atomic, write_text_atomic)
from i2i_unlearn.config import TaskConfig, UnlearnConfig, from_dict, to_dict
from i2i_unlearn.data import make_unlearn_split
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.evaluation.collect import collect_set
from i2i_unlearn.evaluation.evaluator import load_evaluator
from i2i_unlearn.evaluation.targets import RETRAINED, check_targets
from i2i_unlearn.lineage import default_retain_classes, training_data_config
from i2i_unlearn.models import load_model
from i2i_unlearn.paths import absolute, relative
from i2i_unlearn.runs import RUN_RECORD, total_wall_time
from i2i_unlearn.text import format_fixed as fmt
from i2i_unlearn.unlearn import unlearn

CONTINUATION_DOC = ("with a constant learning rate after warm-up, a trial that differs from a finished one only by "
                    "more steps continues that run from its checkpoint (the same weights as a run from the start)")
RESAMPLES = 200   # bootstrap resamples of the validation images for the retain FID's interval


def score(model, split, evaluator, task: TaskConfig, forget_indices: list[int], seed: int,
          original: dict | None = None) -> dict:
    """The tuning scores of one model on the held-out sets of `split` (validation, when tuning); FID with the
    half-width of its 95 % bootstrap interval over the images. Without `original` (the original model's own scores)
    the FID's bootstrap replicates are kept too; with it, the half-width of the FID's ratio to the original's, paired
    (every model draws the same resamples of the same images, so the noise of which images were drawn cancels).
    The sets are read batch by batch (collect.py): an image folder's validation images are never held, only their
    features and a few numbers each."""
    out = {}
    for set_name, images in (("forget", split.forget_eval), ("retain", split.retain_eval)):
        collected = collect_set({"model": model}, images, task, seed, evaluator, noise=False, interval_images=None,
                                description=f"tuning: {set_name} images")
        rows, truth = collected.rows["model"], collected.truths["model"]
        generated, real = rows.whole.features.double(), truth.whole.features.double()
        replicates = metrics.bootstrap_statistic(lambda idx: metrics.fid_from_features(generated[idx], real[idx]),
                                                 metrics.bootstrap_indices(len(images), RESAMPLES, seed))
        out[set_name] = {"fid": round(metrics.fid_of_features(rows.whole.features, truth.whole.features), 4),
                         "fid_hw": round(metrics.Z_95 * float(replicates.std()), 4),
                         "similarity": round(metrics.similarity_of_features(rows.whole.features,
                                                                            truth.whole.features), 5),
                         "recognition": (metrics.predicted_share(rows.whole.predicted, forget_indices)
                                         if evaluator.has_classes else None),
                         "hidden_mse": round(rows.hidden_mse(), 5),
                         **_fid_spread(replicates, original and original[set_name]),
                         "count": len(images)}
    return out


def _fid_spread(replicates, original: dict | None) -> dict:
    """The original's FID replicates (kept for pairing), or a model's FID ratio's paired half-width."""
    if original is None:
        return {"fid_replicates": [float(f"{value:.6g}") for value in replicates.tolist()]}
    ratio = replicates / torch.tensor(original["fid_replicates"], dtype=replicates.dtype)
    return {"fid_ratio_hw": round(metrics.Z_95 * float(ratio.std()), 4)}


def trial_config(base: dict, method: str, overrides: dict, forget_classes: list[str]) -> UnlearnConfig:
    values = json.loads(json.dumps(base))
    values.update(method=method, forget_classes=forget_classes)
    for key, value in overrides.items():
        values[key] = {**values[key], **value} if isinstance(value, dict) else value
    return from_dict(UnlearnConfig, values, " trial")


def prefix_trial(trials, method: str, config: UnlearnConfig, weights_sha256: str, root: Path,
                 start: dict | None = None) -> dict | None:
    """The longest finished trial that is the first steps of this one: same method and knobs, fewer steps.

    Only with a constant learning rate after warm-up: then the loop (whose batches and noise are a
    function of the step) makes the first N steps of a longer run exactly the shorter run, so the
    longer trial continues the shorter one's checkpoint.
    """
    if config.optim.schedule != "constant":
        return None
    knobs = {**to_dict(config), "steps": None}
    shorter = [t for t in trials if t["method"] == method and "scores" in t and t.get("starts_from") == start
               and t["model_weights_sha256"] == weights_sha256 and t["config"]["steps"] < config.steps
               and {**t["config"], "steps": None} == knobs and (root / t["dir"] / CHECKPOINTS).is_dir()]
    return max(shorter, key=lambda t: t["config"]["steps"], default=None)


WALL_TIME_SOURCE = "unlearning_wall_time_from"   # "run.json": every invocation of the run (run.json's total)
OLD_WALL_TIME = "the record before run.json was read (a resumed trial's last invocation only)"


def _whole_wall_time(trial: dict, root: Path) -> dict:
    """A trial scored before its time was read from run.json: that time, while its folder still holds the run that
    was scored (its weights, and not made again since: `trial_model_dir` marks a remade trial first). Once only."""
    folder = root / trial["dir"] if trial.get("dir") else None
    if (WALL_TIME_SOURCE in trial or folder is None or not (folder / RUN_RECORD).is_file()
            or not (folder / CONFIG_NAME).is_file()
            or read_json(folder / CONFIG_NAME).get("weights_sha256") != trial.get("unlearned_weights_sha256")):
        return {}
    return {"unlearning_wall_time_s": round(total_wall_time(read_json(folder / RUN_RECORD)), 3),
            WALL_TIME_SOURCE: RUN_RECORD}


def _named_start(start: dict | None) -> dict:
    """The `starts_from` field a trial, its key and its choice carry when the method starts from another's model."""
    return {"starts_from": start} if start else {}


def _key(method: str, config: UnlearnConfig, start: dict | None = None) -> str:
    named = {"method": method, **to_dict(config), **_named_start(start)}
    return sha256_json(named)[:16]


def load_tune_config(path: Path) -> dict:
    spec = yaml.safe_load(Path(path).read_text())
    check_spec(spec, str(path))
    return spec


def check_spec(spec: dict, where: str = "the tuning config") -> None:
    """One grid for every method: `methods: [...]` and `grid: {knob: [values], ...}`."""
    grid = spec.get("grid")
    if not isinstance(spec.get("methods"), list) or not spec["methods"]:
        raise UserError(f"{where}: `methods:` lists the methods to tune, all over the one `grid:`")
    if not isinstance(grid, dict) or not grid or any(not isinstance(v, list) or not v for v in grid.values()):
        raise UserError(f"{where}: `grid:` maps each knob to its values, one grid for every method (a grid per "
                        "method could favour one), e.g. {alpha: [0.01, 0.1], steps: [500, 1500]}")
    halving = spec.get("halving")
    if halving is not None and (not isinstance(halving, dict) or set(halving) != {"keep"}
                                or not isinstance(halving["keep"], (int, float)) or not 0 < halving["keep"] <= 1):
        raise UserError(f"{where}: `halving:` is {{keep: K}}, the share of chains (0 < K <= 1) that continue to each "
                        f"next length, got {halving!r}")
    missing = [m for m in spec["methods"] if m not in (spec.get("write") or {})]
    if missing:
        raise UserError(f"{where}: `write:` names no config file for {', '.join(missing)}")
    share = spec.get("like_retrained_max_step_share")
    if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1):
        raise UserError(f"{where}: `like_retrained_max_step_share:` is a share of retraining's steps (0 < share <= 1), "
                        f"got {share!r}")
    for method, start in (spec.get("starts_from") or {}).items():
        if method not in spec["methods"] or start not in spec["methods"][:spec["methods"].index(method)]:
            raise UserError(f"{where}: `starts_from: {{{method}: {start}}}`: both must be in `methods:`, the start "
                            "first (a method is tuned from its start's chosen model)")


def tune(spec: dict, results_path: Path, work: Path, *, root: Path, command: str = "",
         methods: list[str] | None = None, echo=print) -> dict:
    """Run every missing trial of `spec` (of `methods` only, if given) on the validation split, choose, and
    record. A method is chosen for once every trial of its grid is done; earlier choices are kept. Paths in
    `spec` are read against `root`, and the record's and the chosen config files' are written relative to it."""
    check_spec(spec)
    task = from_dict(TaskConfig, spec.get("task", {"name": "center-inpaint", "ratio": 0.5}), " task")
    seed = spec.get("seed", 0)
    forget_classes = spec["forget_classes"]
    model_dir = absolute(spec["model"], root)
    model = load_model(model_dir)
    evaluator = load_evaluator(absolute(spec["evaluator"], root))
    forget_indices = [evaluator.class_names.index(c) for c in forget_classes]
    split = make_unlearn_split(training_data_config(model), UnlearnConfig(
        forget_classes=forget_classes, retain_classes=default_retain_classes(model, forget_classes)), "val")
    base = to_dict(from_dict(UnlearnConfig, spec.get("base") or {}, " base"))
    record = json.loads(results_path.read_text()) if results_path.is_file() else {}
    trials = {t["key"]: t for t in record.get("trials", [])}
    record.update({
        "command": command or record.get("command", ""), "model": relative(model_dir, root),
        "model_weights_sha256": model.pretrained_info["weights_sha256"], "evaluator": spec["evaluator"],
        "base": base, "forget_classes": forget_classes, "task": to_dict(task), "seed": seed,
        "scored_split": "val", "split": split.parts,
        "budget": {"trials_per_method": len(grid_points(spec["grid"])),
                   "steps_per_method": planned_steps(spec["grid"], halving_keep(spec)),
                   "halving": {"keep": halving_keep(spec), "doc": HALVING_DOC} if halving_keep(spec) < 1 else None,
                   "methods": spec["methods"], "grid": spec["grid"], "continuation": CONTINUATION_DOC,
                   "validation_images": {"forget": len(split.forget_eval), "retain": len(split.retain_eval)}},
        "rule": {**spec["rule"], "doc": RULE_DOC}, "versions": versions()})
    if (record.get("original", {}).get("weights_sha256") != record["model_weights_sha256"]
            or "fid_replicates" not in record["original"]["scores"]["retain"]):   # a record from before the pairing
        record["original"] = {"weights_sha256": record["model_weights_sha256"],
                              "scores": score(model, split, evaluator, task, forget_indices, seed)}
    original = record["original"]["scores"]
    reference_dirs = like_retrained_reference(spec)
    if reference_dirs:   # scored on the same validation images: the like-retrained choice's reference
        shas = [read_config_dir(absolute(d, root))["weights_sha256"] for d in reference_dirs]
        if (record.get("retrained") or {}).get("weights_sha256") != shas:
            record["retrained"] = {"dirs": reference_dirs, "weights_sha256": shas, "scores": mean_scores(
                [score(load_model(absolute(d, root)), split, evaluator, task, forget_indices, seed, original)
                 for d in reference_dirs])}
    record.pop("like_retrained_max_step_share", None)   # the bound this run chooses under, or none
    if spec.get("like_retrained_max_step_share") is not None and reference_dirs:
        record["retrained"]["steps"] = retraining_steps(reference_dirs, root)
        record["like_retrained_max_step_share"] = spec["like_retrained_max_step_share"]
    methods = methods or spec["methods"]
    unknown = sorted(set(methods) - set(spec["methods"]))
    if unknown:
        raise UserError(f"--methods: {', '.join(unknown)} not in the tuning config; known: {', '.join(spec['methods'])}")
    keep = halving_keep(spec)
    record.setdefault("chosen", {})
    for method in [m for m in spec["methods"] if m in methods]:   # a start before the methods that start from it
        start = _start(spec, record, method)
        # what a new trial unlearns: the original, or the start's chosen model (made again only if a trial needs it)
        source = functools.cache(lambda start=start: trial_model_dir(trials[start["key"]], record, trials, root, echo)
                                 if start else model_dir)

        def run(overrides: dict) -> dict:
            config = trial_config(base, method, overrides, forget_classes)
            key = _key(method, config, start)
            if (key in trials and "scores" in trials[key]
                    and trials[key]["model_weights_sha256"] == record["model_weights_sha256"]):
                trials[key].pop("pruned", None)   # scored before, on the path again
                trials[key].update(_whole_wall_time(trials[key], root))
                return trials[key]
            trial = {"key": key, "method": method, "overrides": overrides, "config": to_dict(config),
                     "model_weights_sha256": record["model_weights_sha256"], **_named_start(start)}
            prefix = prefix_trial(trials.values(), method, config, record["model_weights_sha256"], root, start)
            out = work / f"{method}-{key}"
            if (out / CHECKPOINTS).is_dir() and any((out / CHECKPOINTS).iterdir()):
                # this trial was killed after a checkpoint of its own (its folder is named by its key): go on
                unlearn_from_root(source(), config, out, root, resume=True)
            elif prefix is not None:  # continue the shorter trial's run from its last checkpoint
                shutil.rmtree(out, ignore_errors=True)
                shutil.copytree(root / prefix["dir"] / CHECKPOINTS, out / CHECKPOINTS)
                unlearn_from_root(source(), config, out, root, resume=True)
            else:
                unlearn_from_root(source(), config, out, root, overwrite=True)
            if prefix is not None:
                trial["continued_from"] = prefix["key"]
            unlearned = load_model(out)
            scoring_started = time.time()
            trial.update({"dir": relative(out, root), "unlearned_weights_sha256": unlearned.pretrained_info[
                "weights_sha256"], "unlearning_wall_time_s": round(total_wall_time(read_json(out / RUN_RECORD)), 3),
                          WALL_TIME_SOURCE: RUN_RECORD,
                          "scores": score(unlearned, split, evaluator, task, forget_indices, seed, original)})
            trial["scoring_wall_time_s"] = round(time.time() - scoring_started, 3)   # (to plan a re-tune's time)
            trial["ratios"] = ratios(trial, original)
            return record_trial(trial)

        def prune(overrides: dict, after_steps: int, rank: int, of: int) -> dict:
            config = trial_config(base, method, overrides, forget_classes)
            key = _key(method, config, start)
            trial = trials.get(key) if trials.get(key, {}).get("model_weights_sha256") == record[
                "model_weights_sha256"] else None   # scored before halving: kept, but off the path
            trial = trial or {"key": key, "method": method, "overrides": overrides, "config": to_dict(config),
                              "model_weights_sha256": record["model_weights_sha256"],
                              **_named_start(start)}
            trial["pruned"] = {"after_steps": after_steps, "rank": rank, "of": of}
            return record_trial(trial)

        def record_trial(trial: dict) -> dict:
            trials[trial["key"]] = trial
            record["trials"] = list(trials.values())
            write_json_atomic(results_path, record)
            if "scores" in trial and "pruned" not in trial:
                echo(json.dumps({k: trial[k] for k in ("method", "overrides", "ratios", "unlearning_wall_time_s")}))
            return trial

        path = successive_halving(chains(spec["grid"]), keep, spec["rule"], run, prune)   # scored or pruned
        done = [trials[t["key"]] for t in path if "scores" in trials[t["key"]] and "pruned" not in trials[t["key"]]]
        start_config = spec["write"][start["method"]] if start else None

        def choice(trial: dict, config_file: str | None, like_retrained: bool = False) -> dict:
            """The record's entry for a chosen trial, its knobs written to `config_file` (if one is named)."""
            if config_file:
                write_chosen_config(root / config_file, trial, method, results_path, root, start_config,
                                    like_retrained=like_retrained)
            return {"key": trial["key"], "overrides": trial["overrides"], "ratios": trial["ratios"],
                    **({"config_file": config_file} if config_file else {}), **_named_start(start)}

        chosen, keeps = choose(done, spec["rule"])
        record["chosen"][method] = {**choice(chosen, spec["write"][method]), "keeps_retain_by_rule": keeps}
        if record.get("retrained"):
            like = choose_like_retrained(within_cost(done, spec, record, trials), spec["rule"],
                                         record["retrained"]["scores"])
            like_file = like_retrained_file(spec, method) if spec.get("like_retrained_dir") else None
            record["like_retrained_doc"] = LIKE_RETRAINED_DOC
            record.setdefault("like_retrained", {})[method] = like and choice(like, like_file, like_retrained=True)
            if not like and like_file:   # no trial keeps the retain set: no such knobs, none left from before
                (root / like_file).unlink(missing_ok=True)
        record["trials"] = list(trials.values())
        write_json_atomic(results_path, record)
    return record


def _start(spec: dict, record: dict, method: str) -> dict | None:
    """{method, key} of the chosen trial `method` starts from, or None (it starts from the original)."""
    source = (spec.get("starts_from") or {}).get(method)
    if source is None:
        return None
    chosen = record["chosen"].get(source)
    if chosen is None:
        raise UserError(f"{method} starts from {source}'s chosen model: tune {source} first (--methods {source})")
    return {"method": source, "key": chosen["key"]}


def unlearn_from_root(start: Path, config: UnlearnConfig, out: Path, root: Path, **options) -> None:
    """A trial's unlearning (its checkpoints kept, to continue it), made from the root: its records name the start
    relative to it, as a shipped model's do, so a robustness audit can keep the trial's model as its own
    (bench/robust.py reuse_models_from) without naming this machine's folders."""
    with contextlib.chdir(root):
        unlearn(Path(relative(start, root)), config, Path(relative(out, root)), keep_checkpoint=True, **options)


def trial_model_dir(trial: dict, record: dict, trials: dict, root: Path, echo=print) -> Path:
    """A scored trial's model folder, made again from its recorded config when it is gone (the trial folders live
    in runs/, which a fresh machine does not have; the record is kept with the results). Said when the weights
    differ from the scored ones (another machine or thread count can change the last bits)."""
    out = root / trial["dir"]
    if not (out / "model.safetensors").is_file():
        start = trial.get("starts_from")
        source = trial_model_dir(trials[start["key"]], record, trials, root, echo) if start else root / record["model"]
        echo(f"{trial['method']} {trial['key']}: its model is not in {trial['dir']}; making it again")
        trial.setdefault(WALL_TIME_SOURCE, OLD_WALL_TIME)   # the remake's run.json is not the scored run's
        unlearn_from_root(source, from_dict(UnlearnConfig, trial["config"], " trial"), out, root, overwrite=True)
        made = load_model(out).pretrained_info["weights_sha256"]
        if trial.get("unlearned_weights_sha256") not in (None, made):
            echo(f"{trial['method']} {trial['key']}: made again with other weights than the scored run's "
                 "(sha256 differs); the recorded scores are the first run's")
    return out


def retraining_steps(reference_dirs: list[str], root: Path) -> float:
    """The retrained models' mean training steps (their run.json), the like-retrained step bound's unit."""
    steps = []
    for folder in reference_dirs:
        run = absolute(folder, root) / RUN_RECORD
        recorded = read_json(run).get("steps") if run.is_file() else None
        if not isinstance(recorded, int):
            raise UserError(f"like_retrained_max_step_share: {folder} records no training steps ({RUN_RECORD}); the "
                            "bound is a share of the retrained models' steps: leave it out, or name trained models")
        steps.append(recorded)
    return sum(steps) / len(steps)


def steps_from_the_original(trial: dict, trials: dict) -> int:
    """A trial's optimiser steps, with those of the chosen trial it starts from (undo: its ours-substitute's)."""
    start = trial.get("starts_from")
    return trial["config"]["steps"] + (steps_from_the_original(trials[start["key"]], trials) if start else 0)


def within_cost(done: list[dict], spec: dict, record: dict, trials: dict) -> list[dict]:
    """The trials the like-retrained choice may take: all, or with `like_retrained_max_step_share` those whose steps
    from the original are at most that share of the retrained models' training steps (LIKE_RETRAINED_DOC)."""
    share = spec.get("like_retrained_max_step_share")
    if share is None or "steps" not in record.get("retrained", {}):
        return done
    return [t for t in done if steps_from_the_original(t, trials) <= share * record["retrained"]["steps"]]


def like_retrained_reference(spec: dict) -> list[str]:
    """The retrained models the like-retrained choice is measured against: `like_retrained_reference:` (a list;
    best other seeds than `retrained:`, the test's and the robustness audit's held-out reference), else
    `retrained:` alone."""
    reference = spec.get("like_retrained_reference") or spec.get("retrained")
    return [reference] if isinstance(reference, str) else list(reference or [])


def mean_scores(scores: list[dict]) -> dict:
    """Per set, the mean of each score the models share (one model: its own scores)."""
    if len(scores) == 1:
        return scores[0]
    return {set_name: {key: sum(s[set_name][key] for s in scores) / len(scores) for key in scores[0][set_name]
                       if all(isinstance(s[set_name].get(key), (int, float)) for s in scores)}
            for set_name in scores[0]}


def like_retrained_file(spec: dict, method: str) -> str:
    """Where a method's like-retrained knobs go: its `write:` file's name in `like_retrained_dir:`."""
    return str(Path(spec["like_retrained_dir"]) / Path(spec["write"][method]).name)


def write_chosen_config(path: Path, trial: dict, method: str, results_path: Path, root: Path,
                        start_config: str | None = None, like_retrained: bool = False) -> None:
    opening = (f"# {method}: the trial that forgets most like the retrained model, on the validation split, chosen by\n"
               f"# benchmarks/tune.py for an auditor (like_retrained, and every trial, in\n" if like_retrained else
               f"# {method}: knobs chosen on the validation split by benchmarks/tune.py (rule and every trial in\n")
    header = (opening + f"# {relative(results_path, root)}). Generated: edit the tuning config, not this file.\n"
              f"# Chosen overrides: {json.dumps(trial['overrides'])}\n"
              + (f"# Run it on the model that {start_config} unlearns (--model is that run's folder).\n"
                 if start_config else ""))
    write_text_atomic(path, header + yaml.safe_dump(trial["config"], sort_keys=False, default_flow_style=None))


def score_test(spec: dict, results_path: Path, work: Path, *, root: Path, command: str = "",
               methods: list[str] | None = None) -> dict:
    """Score each method's chosen trial on the test split, once (a changed choice is scored anew). A choice scored
    before is not scored again; its stored scores are judged again by the current targets (targets.py)."""
    from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
    record = json.loads(results_path.read_text())
    task = from_dict(TaskConfig, spec.get("task", {"name": "center-inpaint", "ratio": 0.5}), " task")
    trials = {t["key"]: t for t in record["trials"]}
    record.setdefault("test", {})
    for method, chosen in record["chosen"].items():
        if methods and method not in methods:
            continue
        done = record["test"].get(method)
        if done and done["key"] == chosen["key"]:   # scored already: only judged again, by today's targets
            done["targets"] = check_targets({"metrics": done["metrics"]})
            continue
        out = work / f"test-{method}-{chosen['key']}"
        models = {"original": root / record["model"],
                  "unlearned": trial_model_dir(trials[chosen["key"]], record, trials, root)}
        if spec.get("retrained"):  # the reference retrained without the forget classes
            models[RETRAINED] = root / spec["retrained"]
        results = evaluate_model_dirs(models,
                                      task, str(root / spec["evaluator"]), out, forget_classes=record["forget_classes"],
                                      seed=record["seed"], split="test", overwrite=True)
        record["test"][method] = {"key": chosen["key"], "command": command, "metrics": results["metrics"],
                                  "targets": results["targets"], "results": relative(out / "results.json", root)}
        write_json_atomic(results_path, record)
    write_json_atomic(results_path, record)
    return record


def _reference_line(name: str, scores: dict) -> str:
    return (f"| {name} | – | {fmt(scores['forget']['fid'], 2)} | {fmt(scores['forget']['recognition'])} | "
            f"{fmt(scores['retain']['fid'], 2)} | {fmt(scores['retain']['similarity'])} | – | |")


def _cost_bound(record: dict) -> str:
    share = record.get("like_retrained_max_step_share")
    if share is None:
        return ""
    steps = record["retrained"]["steps"]
    return f" Here like_retrained_max_step_share is {share:g}: at most {share:g} x {steps:g} = {share * steps:g} steps."


def markdown(record: dict) -> str:
    """Every trial (validation), the choice per method, and the one test score of each choice."""
    original = record["original"]["scores"]
    lines = [f"Tuning on the validation split ({record['budget']['validation_images']['forget']} forget, "
             f"{record['budget']['validation_images']['retain']} retain images), "
             f"{record['budget']['trials_per_method']} grid points per method, "
             f"{record['budget'].get('steps_per_method', '?')} optimiser steps per method; `{record['command']}`.", "",
             *([f"Budget: {record['budget']['halving']['doc']} (keep {record['budget']['halving']['keep']}).", ""]
               if record["budget"].get("halving") else []),
             f"Rule: {record['rule']['doc']} (retain_fid_max_x {record['rule']['retain_fid_max_x']}, "
             f"retain_similarity_min_x {record['rule']['retain_similarity_min_x']}).", "",
             *([f"Like retrained: {record['like_retrained_doc']}.{_cost_bound(record)}", ""]
               if record.get("like_retrained_doc") else []),
             "| method | knobs | forget FID | forget recog. | retain FID (x orig.) | retain sim. (x orig.) | time | chosen |",
             "|---|---|---|---|---|---|---|---|",
             _reference_line("original", original),
             *([_reference_line("retrained" + (f" (mean of {len(record['retrained']['dirs'])})"
                                               if len(record["retrained"].get("dirs", [])) > 1 else ""),
                                record["retrained"]["scores"])] if record.get("retrained") else [])]
    for trial in record.get("trials", []):
        if "pruned" in trial:
            pruned = trial["pruned"]
            lines.append(f"| {trial['method']} | `{json.dumps(trial['overrides'])}` | pruned after "
                         f"{pruned['after_steps']} steps (rank {pruned['rank']} of {pruned['of']}) | | | | | |")
            continue
        s, r = trial["scores"], trial["ratios"]
        choice = record.get("chosen", {}).get(trial["method"], {})
        chosen = ""
        if choice.get("key") == trial["key"]:
            chosen = "**yes**"
            if not choice.get("keeps_retain_by_rule", True):
                chosen += " (no trial keeps the retain set: the lowest retain FID)"
        if (record.get("like_retrained", {}).get(trial["method"]) or {}).get("key") == trial["key"]:
            chosen = ", ".join(filter(None, [chosen, "like retrained"]))
        lines.append(f"| {trial['method']} | `{json.dumps(trial['overrides'])}` | {fmt(s['forget']['fid'], 2)} | "
                     f"{fmt(s['forget']['recognition'])} | {fmt(s['retain']['fid'], 2)} ({r['retain_fid_x']:.2f}x) | "
                     f"{fmt(s['retain']['similarity'])} ({r['retain_similarity_x']:.3f}x) | "
                     f"{trial['unlearning_wall_time_s']:.0f} s | {chosen} |")
    if record.get("test"):
        lines += ["", "Test split, scored once with the chosen knobs (center inpainting 1/2):", "",
                  "| method | forget FID | forget recog. | retain FID | retain sim. | targets met | missed (value vs limit) |",
                  "|---|---|---|---|---|---|---|"]
        def row_line(name, m, met="", missed=""):
            f, r = m["forget"], m["retain"]
            return (f"| {name} | {fmt(f['fid'], 2)} | {fmt(f['recognition'])} | {fmt(r['fid'], 2)} | "
                    f"{fmt(r['similarity'])} | {met} | {missed} |")
        first = next(iter(record["test"].values()))["metrics"]  # the same test images for every method
        lines += [row_line(name, first[name]) for name in ("original", RETRAINED) if name in first]
        for method, test in record["test"].items():
            judged = [t for t in test["targets"] if t["met"] is not None]  # None: replaced by the retrained bar
            missed = "; ".join(f"{t['name']} ({fmt(t['value'])} vs {fmt(t['limit'])})"
                               for t in judged if not t["met"])
            lines.append(row_line(method, test["metrics"]["unlearned"],
                                  f"{sum(t['met'] for t in judged)}/{len(judged)}", missed))
    return "\n".join(lines) + "\n"

