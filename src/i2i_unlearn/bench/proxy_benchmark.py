"""Which proxy retain set protects the retain set (issue 10 item 7): `ours` without the real retain images.
The command is benchmarks/proxy.py (`--config benchmarks/proxy-mae.yaml`).

The config (benchmarks/proxy-mae.yaml) names the model, the evaluator, the unlearning knobs (the shipped ones,
configs/unlearn-mae-animal-mnist.yaml) and a list of proxies, each a set of UnlearnConfig overrides (docs/proxy.md):
the real retain set (the reference, no override), another dataset, that dataset binarized, the model's own outputs
of that dataset's images and of noise. Steps:

1. every proxy: `ours` with the knobs and that proxy; all of them scored together with the original on the
   VALIDATION split (evaluate, center inpainting 1/2, no bootstrap): the retain FID and the forget recognition, each
   as a ratio to the original model's;
2. the best proxy by RULE_DOC, then the same proxy at each retain-set size of `sizes` (retain images per forget
   image), scored the same way; the best of those by the same rule;
3. only that one and the real-retain reference are scored on TEST, once, beside the original.

Writes <results>/<name>.json (command, config, knobs, versions, every run with its unlearning wall time and
scores, each scoring's wall time, the choices, the test scores and targets) and .md. Every unlearned model and every
scoring is cached in the work folder: a finished run folder (run.json) is reused, a killed run resumes
from its last checkpoint, a scoring whose inputs (the weights it scores, the evaluator, the task) are unchanged is
read back; a killed benchmark restarts where it stopped.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import yaml

from i2i_unlearn.checkpoints import (CHECKPOINTS, read_json, sha256_file, sha256_json, versions, write_json_atomic,
                                     write_text_atomic)
from i2i_unlearn.config import TaskConfig, UnlearnConfig, from_dict, load_yaml, to_dict
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
from i2i_unlearn.evaluation.scoring import BOOTSTRAP_RESAMPLES
from i2i_unlearn.evaluation.targets import GROUND_TRUTH, MEAN_FILL, RETRAINED
from i2i_unlearn.paths import absolute, relative
from i2i_unlearn.runs import RUN_RECORD, total_wall_time
from i2i_unlearn.text import format_fixed as fmt
from i2i_unlearn.unlearn import unlearn

KEYS = {"model", "evaluator", "knobs", "forget_classes", "task", "seed", "reference", "proxies", "sizes",
        "forget_recognition_max_x", "target_retain_fid_x", "test_bootstrap"}
RESERVED = {"original", "reference", "unlearned", RETRAINED, MEAN_FILL, GROUND_TRUTH}   # rows of evaluate's results
SCORING_KEY = "benchmark-key.txt"   # beside each results.json: what it was computed from
SCORING_TIME = "benchmark-seconds.txt"
RULE_DOC = ("among the proxy runs (the real-retain reference excluded) whose forget recognition on validation is at "
            "most forget_recognition_max_x x the original's, the lowest retain FID ratio; if none meets it, the lowest "
            "retain FID ratio (marked: forget target missed). Applied to the proxies at their own size, then to the "
            "chosen proxy at every size")


def load_spec(path: Path) -> dict:
    spec = yaml.safe_load(Path(path).read_text()) or {}
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KEYS))}")
    missing = sorted({"model", "evaluator", "knobs", "reference", "proxies"} - set(spec))
    if missing:
        raise UserError(f"{path}: missing key(s) {', '.join(missing)}")
    if spec["reference"] not in spec["proxies"]:
        raise UserError(f"{path}: the reference {spec['reference']!r} is not one of the proxies")
    if len(spec["proxies"]) < 2:
        raise UserError(f"{path}: name at least one proxy beside the reference")
    reserved = sorted(set(spec["proxies"]) & RESERVED)
    if reserved:
        raise UserError(f"{path}: {', '.join(reserved)} name rows of the scorings; call the proxy otherwise")
    return spec


def run_config(knobs: UnlearnConfig, overrides: dict | None, forget_classes: list[str] | None) -> UnlearnConfig:
    """The knobs with one proxy's overrides (nested keys replace whole values, as a config file would)."""
    values = to_dict(knobs)
    values.update(overrides or {})
    if forget_classes:
        values["forget_classes"] = list(forget_classes)
    return from_dict(UnlearnConfig, values, " run")


def _key(*parts) -> str:
    return sha256_json(parts)[:12]


def _weights(folder: Path) -> str:
    return sha256_file(Path(folder) / "model.safetensors")


def unlearned(model: Path, config: UnlearnConfig, out: Path, root: Path) -> dict:
    """The model `config` makes of `model`, trained once: a finished folder (run.json) is reused, a started one
    resumes from its last checkpoint."""
    if not (out / RUN_RECORD).is_file():
        resumed = False
        if (out / CHECKPOINTS).is_dir():
            try:
                unlearn(model, config, out, resume=True)
                resumed = True
            except UserError as error:   # a checkpoint of another config: start afresh
                print(f"proxy benchmark: not resuming {out.name} ({error}); starting again", file=sys.stderr)
        if not resumed:
            unlearn(model, config, out, overwrite=out.exists())
    record = read_json(out / RUN_RECORD)
    return {"dir": relative(out, root), "unlearning_wall_time_s": total_wall_time(record),
            "proxy": record["inputs"].get("proxy"), "retain_count": record["inputs"]["retain_count"],
            "forget_count": record["inputs"]["forget_count"]}


def scored(models: dict[str, Path], out: Path, spec: dict, split: str, bootstrap: int,
           root: Path) -> tuple[dict, float]:
    """(results.json, seconds) of evaluate on `split`, run once: a finished scoring with the same key is read back."""
    task = from_dict(TaskConfig, spec.get("task") or {"name": "center-inpaint", "ratio": 0.5}, " task")
    key = sha256_json({"models": {name: _weights(folder) for name, folder in models.items()},
                       "evaluator": _weights(absolute(spec["evaluator"], root)), "task": to_dict(task),
                       "forget_classes": spec.get("forget_classes"), "seed": spec.get("seed", 0),
                       "split": split, "bootstrap": bootstrap})
    if ((out / "results.json").is_file() and (out / SCORING_KEY).is_file()
            and (out / SCORING_KEY).read_text() == key):
        seconds = float((out / SCORING_TIME).read_text()) if (out / SCORING_TIME).is_file() else None
        return read_json(out / "results.json"), seconds
    started = time.time()
    results = evaluate_model_dirs({name: str(folder) for name, folder in models.items()}, task,
                                  absolute(spec["evaluator"], root), out, forget_classes=spec.get("forget_classes"),
                                  seed=spec.get("seed", 0), split=split, overwrite=True, bootstrap=bootstrap)
    seconds = round(time.time() - started, 1)
    write_text_atomic(out / SCORING_TIME, f"{seconds}\n")
    write_text_atomic(out / SCORING_KEY, key)
    return results, seconds


def scores(metrics: dict, original: dict) -> dict:
    """Retain FID and forget recognition of one model, and their ratios to the original's."""
    retain_fid, recognition = metrics["retain"]["fid"], metrics["forget"]["recognition"]
    return {"retain_fid": retain_fid, "forget_recognition": recognition,
            "retain_similarity": metrics["retain"]["similarity"], "forget_fid": metrics["forget"]["fid"],
            "retain_fid_x": round(retain_fid / original["retain"]["fid"], 4) if original["retain"]["fid"] else None,
            "forget_recognition_x": round(recognition / original["forget"]["recognition"], 4)
            if original["forget"]["recognition"] else None}


def meets_forget(run: dict, limit: float) -> bool:
    ratio = run["val"]["forget_recognition_x"]
    return ratio is not None and ratio <= limit


def choose(runs: list[dict], limit: float) -> tuple[dict, bool]:
    """(the best run by RULE_DOC, whether it meets the forget target)."""
    def retain(run):
        ratio = run["val"]["retain_fid_x"]
        return float("inf") if ratio is None else ratio
    meeting = [run for run in runs if meets_forget(run, limit)]
    if meeting:
        return min(meeting, key=retain), True
    return min(runs, key=retain), False


def proxy_benchmark(config_path: Path, work: Path, results: Path, *, root: Path, command: str = "",
                    echo=print) -> dict:
    """Train and score every run of the proxy config at `config_path` (each once; see the module's docstring),
    choose, score the choice on test. Models and scorings are cached in `work`; writes <results>/<name>.json and
    .md (name: the config's, without .yaml). Paths are read against `root` and recorded relative to it."""
    spec = load_spec(config_path)
    results = Path(results) / Path(config_path).stem
    work.mkdir(parents=True, exist_ok=True)
    model = absolute(spec["model"], root)
    knobs = load_yaml(UnlearnConfig, absolute(spec["knobs"], root))
    forget_classes = spec.get("forget_classes") or knobs.forget_classes
    spec = {**spec, "forget_classes": list(forget_classes)}
    limit = spec.get("forget_recognition_max_x", 1 / 3)
    model_weights = _weights(model)
    record = {"command": command, "config_file": relative(config_path, root), "config": spec,
              "knobs": spec["knobs"], "knobs_config": to_dict(knobs), "model": spec["model"],
              "model_weights_sha256": model_weights, "evaluator": spec["evaluator"],
              "rule": {"doc": RULE_DOC, "forget_recognition_max_x": limit},
              "target": {"retain_fid_x": spec.get("target_retain_fid_x", 1.3),
                         "doc": "proxy-only ours within this multiple of the original's retain FID on test while "
                                "meeting the forget targets (issue 10 item 7)"},
              "scored_split": "val", "versions": versions(), "runs": [], "chosen": {}, "scorings": {}}
    started = time.time()
    runs: dict[str, dict] = {}
    original_metrics: dict = {}   # the original's validation metrics, the reference of every ratio

    def save():
        record["runs"] = list(runs.values())
        record["wall_time_s"] = round(time.time() - started, 1)
        write_json_atomic(results.with_suffix(".json"), record)

    def train_runs(planned: dict[str, tuple[str, dict, float | None]]) -> None:
        """Unlearn each planned run (name: (proxy name, overrides, retain ratio)), once."""
        for name, (kind, overrides, ratio) in planned.items():
            config = run_config(knobs, overrides, forget_classes)
            key = _key(model_weights, to_dict(config))
            runs[name] = {"name": name, "proxy_name": kind, "retain_ratio": ratio, "overrides": overrides or {},
                          "config": to_dict(config), "key": key,
                          **unlearned(model, config, work / f"run-{name}-{key}", root)}
            save()

    def score_runs(names: list[str], phase: str, with_original: bool = False) -> None:
        """One validation scoring of these runs (and the original), cached by the weights it scores."""
        models = {"original": model} if with_original else {}
        models.update({name: absolute(runs[name]["dir"], root) for name in names})
        key = _key(*(runs[name]["key"] for name in names), model_weights if with_original else None)
        scoring, seconds = scored(models, work / f"val-{phase}-{key}", spec, "val", bootstrap=0, root=root)
        if with_original:
            original_metrics.update(scoring["metrics"]["original"])
            record["original"] = {"val": scores(original_metrics, original_metrics),
                                  "val_images": scoring["settings"]["sample_counts"]}
        for name in names:
            runs[name]["val"] = scores(scoring["metrics"][name], original_metrics)
            runs[name]["meets_forget_target"] = meets_forget(runs[name], limit)
            echo(json.dumps({k: runs[name][k] for k in ("name", "val", "unlearning_wall_time_s")}))
        record["scorings"][phase] = {"models": list(models), "seconds": seconds,
                                     "results": relative(work / f"val-{phase}-{key}" / "results.json", root)}
        save()

    # 1. every proxy at its own size, scored together with the original on validation
    train_runs({name: (name, overrides, None) for name, overrides in spec["proxies"].items()})
    score_runs(list(spec["proxies"]), "proxies", with_original=True)
    candidates = [runs[name] for name in spec["proxies"] if name != spec["reference"]]
    best_proxy, meets = choose(candidates, limit)
    record["chosen"]["proxy"] = {"name": best_proxy["name"], "meets_forget_target": meets}

    # 2. the best proxy at every size
    sized = {f"{best_proxy['name']}-ratio-{ratio:g}": (best_proxy["name"], {
        **spec["proxies"][best_proxy["name"]], "retain_ratio": ratio, "retain_size": None}, ratio)
        for ratio in spec.get("sizes") or []}
    if sized:
        train_runs(sized)
        score_runs(list(sized), "sizes")
    best, meets = choose([best_proxy, *(runs[name] for name in sized)], limit)
    record["chosen"]["run"] = {"name": best["name"], "meets_forget_target": meets}
    save()

    # 3. test, once: the chosen proxy run (evaluate's "unlearned": its targets are the proxy run's) and the
    # real-retain reference, beside the original
    reference = runs[spec["reference"]]
    test_models = {"original": model, "reference": absolute(reference["dir"], root),
                   "unlearned": absolute(best["dir"], root)}
    bootstrap = spec.get("test_bootstrap", BOOTSTRAP_RESAMPLES)
    test_dir = work / f"test-{_key(model_weights, reference['key'], best['key'])}"
    test_results, seconds = scored(test_models, test_dir, spec, "test", bootstrap=bootstrap, root=root)
    metrics = test_results["metrics"]
    record["test"] = {"models": {"reference": reference["name"], "proxy": best["name"]},
                      "original": scores(metrics["original"], metrics["original"]),
                      "reference": scores(metrics["reference"], metrics["original"]),
                      "proxy": scores(metrics["unlearned"], metrics["original"]),
                      "targets": test_results["targets"], "bootstrap": bootstrap,
                      "test_images": test_results["settings"]["sample_counts"]}
    record["scorings"]["test"] = {"models": list(test_models), "seconds": seconds,
                                  "results": relative(test_dir / "results.json", root)}
    proxy_test = record["test"]["proxy"]
    forget_targets = [t for t in test_results["targets"] if t["name"].startswith("forget") and t["met"] is not None]
    record["target"]["forget_targets_met"] = bool(forget_targets) and all(t["met"] for t in forget_targets)
    record["target"]["met"] = (proxy_test["retain_fid_x"] is not None
                               and proxy_test["retain_fid_x"] <= record["target"]["retain_fid_x"]
                               and record["target"]["forget_targets_met"])
    save()
    write_text_atomic(results.with_suffix(".md"), markdown(record))
    return record


def markdown(record: dict) -> str:
    original = record["original"]["val"]
    limit = record["rule"]["forget_recognition_max_x"]
    lines = [f"Proxy retain sets for `ours` on `{record['model']}` with the knobs of `{record['knobs']}` "
             f"(`{record['command']}`). Scored on the validation split "
             f"({record['original']['val_images']['forget']} forget, {record['original']['val_images']['retain']} "
             "retain images, center inpainting 1/2); ratios are to the original model's.", "",
             f"Rule: {record['rule']['doc']} (forget_recognition_max_x {limit:.3f}).", "",
             "| run | proxy | proxy images | forget recog. (x orig.) | retain FID (x orig.) | forget target | "
             "unlearning time | chosen |", "|---|---|---|---|---|---|---|---|",
             f"| original | – | – | {fmt(original['forget_recognition'])} | {fmt(original['retain_fid'], 2)} | "
             "– | – | |"]
    for run in record["runs"]:
        v = run["val"]
        proxy = run["proxy"]["source"] if run["proxy"] else "the real retain set (reference)"
        chosen = "**yes**" if record["chosen"].get("run", {}).get("name") == run["name"] else (
            "best proxy" if record["chosen"].get("proxy", {}).get("name") == run["name"] else "")
        lines.append(f"| {run['name']} | {proxy} | {run['retain_count']} | {fmt(v['forget_recognition'])} "
                     f"({fmt(v['forget_recognition_x'], 2)}x) | {fmt(v['retain_fid'], 2)} "
                     f"({fmt(v['retain_fid_x'], 2)}x) | {'met' if run['meets_forget_target'] else 'missed'} | "
                     f"{run['unlearning_wall_time_s']:.0f} s | {chosen} |")
    test = record.get("test")
    if test:
        lines += ["", f"Test split, scored once: the chosen proxy run `{test['models']['proxy']}` and the "
                      f"real-retain reference `{test['models']['reference']}`:", "",
                  "| model | forget recog. (x orig.) | retain FID (x orig.) | retain sim. |", "|---|---|---|---|"]
        for name in ("original", "reference", "proxy"):
            s = test[name]
            lines.append(f"| {name} | {fmt(s['forget_recognition'])} ({fmt(s['forget_recognition_x'], 2)}x) | "
                         f"{fmt(s['retain_fid'], 2)} ({fmt(s['retain_fid_x'], 2)}x) | "
                         f"{fmt(s['retain_similarity'])} |")
        target = record["target"]
        forget = "; ".join(f"{t['name']}: {fmt(t['value'])} ({'met' if t['met'] else 'missed'})"
                           for t in test["targets"] if t["name"].startswith("forget") and t["met"] is not None)
        lines += ["", f"Forget targets of the proxy run on test: {forget or '–'}.", "",
                  f"Target (issue 10 item 7): proxy retain FID <= {target['retain_fid_x']}x the original's while "
                  f"meeting the forget targets: **{'met' if target.get('met') else 'not met'}**."]
    lines += ["", f"Total wall time of this invocation: {record.get('wall_time_s', 0):.0f} s (cached runs cost "
                  "nothing)."]
    return "\n".join(lines) + "\n"
