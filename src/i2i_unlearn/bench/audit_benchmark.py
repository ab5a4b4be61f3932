"""The audit of a shipped model's unlearning (issue 11): does the forgetting survive an attacker?

The command is benchmarks/audit.py (`--config benchmarks/audit-<family>.yaml`). Two requests, each audited
against a model retrained without the forgotten data:
- classes: `ours` (and its substitute-target variant) with the tuned knobs forget the config's classes;
  membership inference, the tell and the relearning attack (`i2i-unlearn audit`), against the shipped
  retrained reference.
- files: a seeded list of `files.count` training images of every class is forgotten by `ours` (the same
  knobs; with `files.stop_at_auc`, also by `ours-stop`: the same knobs stopped where the attack on validation
  images reaches that AUC) and by `retrain` (the original recipe without those images); membership inference
  and the tell on the forgotten images, and retain quality on every never-seen image (`evaluate`).

Every model and audit is cached in the work folder: a killed run starts again where it stopped. Writes
<results>/<name>.json (the audits' numbers, the commands, the inputs' hashes) and .md.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch
import yaml

from i2i_unlearn.checkpoints import (CHECKPOINTS, atomic_write, read_config_dir, read_json, sha256_file, sha256_json,
                                     sha256_text, versions, write_json_atomic, write_text_atomic)
from i2i_unlearn.config import TaskConfig, UnlearnConfig, load_yaml, to_dict
from i2i_unlearn.data import load_split
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.audit import AuditOptions, run_audit
from i2i_unlearn.evaluation.audit.probe import PERMUTATIONS
from i2i_unlearn.evaluation.audit.relearn import RelearnConfig, relearning_paces
from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
from i2i_unlearn.evaluation.scoring import BOOTSTRAP_RESAMPLES
from i2i_unlearn.lineage import request_changes, training_data_config
from i2i_unlearn.models import load_model
from i2i_unlearn.paths import absolute, relative
from i2i_unlearn.unlearn import unlearn

RETRAINED = "retrained"
CACHE_KEY = "benchmark-key.txt"   # beside each audit.json and results.json: what it was computed from
KEYS = {"original", "retrained", "evaluator", "knobs", "forget_classes", "methods", "relearn", "files",
        "max_images", "seed", "bootstrap", "permutations", "probe_folds"}


def load_spec(path: Path) -> dict:
    spec = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KEYS))}")
    return spec


def _unlearned(original: Path, config: UnlearnConfig, out: Path) -> Path:
    """The model `config` makes of `original`, trained once: a finished folder (run.json) of the same config is
    reused, and a killed run resumes from its last checkpoint; a folder of another config (knobs re-tuned since)
    starts again."""
    if (out / "run.json").is_file():
        # unlearn fills in what was left None (e.g. the retain classes); the start model is the one `original` is now
        # (undo's start is re-made when its knobs change)
        changed = request_changes(out, to_dict(config), read_config_dir(original)["weights_sha256"], whole=True)
        if not changed:
            return out
        print(f"{out}: made with another {', '.join(changed)}; starting again", flush=True)
    elif any((out / CHECKPOINTS).glob("step-*")):
        try:
            unlearn(original, config, out, resume=True)
            return out
        except UserError as refused:
            print(f"{out}: not resumed ({refused}); starting again", flush=True)
    unlearn(original, config, out, overwrite=out.exists(), resume=False)
    return out


def forget_list(original: Path, count: int, seed: int, path: Path) -> Path:
    """`count` training images drawn over every class the model was trained on, with `seed`: the file-list
    request (a Cat+Dog model's list holds only Cat and Dog images)."""
    model = load_model(original)
    train = load_split(training_data_config(model)).train
    trained = (model.pretrained_info.get("training") or {}).get("classes")
    if trained:
        train = train.subset(torch.nonzero(torch.isin(train.labels, torch.tensor(train.class_indices(trained))))
                             .flatten())
    if count > len(train):
        raise UserError(f"files.count {count}: the model was trained on {len(train)} images")
    picked = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:count]
    write_text_atomic(path, "".join(f"{train.ids[i]}\n" for i in sorted(picked.tolist())))
    return path


def _audit_settings(spec: dict, request: dict) -> tuple[AuditOptions, RelearnConfig | None]:
    options = AuditOptions(max_images=spec.get("max_images", 200), seed=spec.get("seed", 0),
                           permutations=spec.get("permutations", PERMUTATIONS),   # the tell's permutation test
                           probe_folds=spec.get("probe_folds", 5))
    relearn = RelearnConfig(**{**spec["relearn"], "eval_steps": tuple(spec["relearn"]["eval_steps"])}) \
        if request.get("forget_classes") and spec.get("relearn") else None
    return options, relearn


def audit_key(models: dict, spec: dict, root: Path, **request) -> str:
    """What an audit is computed from: the weights of every model and of the evaluator, the request
    (a file list by its content) and the settings."""
    options, relearn = _audit_settings(spec, request)
    return sha256_json({
        "models": {name: sha256_file(Path(folder) / "model.safetensors") for name, folder in models.items()},
        "evaluator": sha256_file(absolute(spec["evaluator"], root) / "model.safetensors"),
        "request": {k: sha256_file(v) if k == "forget_files" else v for k, v in request.items()},
        "options": to_dict(options), "relearn": to_dict(relearn) if relearn else None})


def _cached(out: Path, key: str, result_file: str, compute) -> dict:
    """compute() once: a finished `result_file` in `out` whose recorded key matches is read back."""
    key_file = out / CACHE_KEY
    if (out / result_file).is_file() and key_file.is_file() and key_file.read_text() == key:
        return read_json(out / result_file)
    result = compute()
    write_text_atomic(key_file, key)
    return result


def _audit(models: dict, out: Path, spec: dict, root: Path, **request) -> dict:
    options, relearn = _audit_settings(spec, request)
    return _cached(out, audit_key(models, spec, root, **request), "audit.json", lambda: run_audit(
        {k: str(v) for k, v in models.items()}, out, evaluator_spec=absolute(spec["evaluator"], root),
        reference=RETRAINED, options=options, relearn=relearn, overwrite=True, **request))


def publish(audit_dir: Path, to: Path, models: dict, root: Path) -> Path:
    """audit.json and its figures beside the results (the work folder is not kept): what the page links.
    The published audit names each model folder relative to the repository, not as this machine placed it."""
    audit = read_json(audit_dir / "audit.json")
    for name, entry in audit["models"].items():
        entry["dir"] = relative(models[name], root)
    if audit.get("lira"):
        audit["lira"]["shadow_dirs"] = {kind: [relative(Path(d), root) for d in dirs]
                                        for kind, dirs in audit["lira"]["shadow_dirs"].items()}
    write_json_atomic(to / "audit.json", audit)
    for name in audit["images"].values():
        atomic_write(to / name, lambda tmp, source=audit_dir / name: shutil.copyfile(source, tmp))
    return to / "audit.json"


def summary(audit: dict) -> dict:
    """Per model: the attack's AUCs, the tell, the forget FID and the relearning paces (recomputed from
    the curves, so an audit written before a pace existed gets it too)."""
    if audit.get("relearning"):
        audit["relearning"].setdefault("reference", audit.get("tell_reference"))
        relearning_paces(audit["relearning"], audit["relearning"]["config"]["variants"][0])
    rows = {}
    for name, entry in audit["membership"]["models"].items():
        tell = audit["tell"]["models"][name]
        row = {"auc": entry["attack"]["auc"], "tpr_at_0.01_fpr": entry["attack"]["tpr_at_0.01_fpr"],
               "calibrated_auc": (entry["calibrated"] or {}).get("auc"),
               "forget_recognition": tell["forget_recognition"], "no_object_share": tell["no_object_share"],
               "probe_accuracy": (tell["probe_vs_reference"] or {}).get("accuracy"), "forget_fid": tell["forget_fid"]}
        if audit.get("relearning"):
            variants = audit["relearning"]["models"][name]["variants"]
            row["relearn_steps_to_half"] = {v: variants[v]["steps_to_half_original"] for v in variants}
            row["relearn_steps_to_original"] = {v: variants[v]["steps_to_original"] for v in variants}
            row["relearn_curve"] = {v: [[p["step"], round(p["recognition"], 3)] for p in variants[v]["curve"]]
                                    for v in variants}
        rows[name] = row
    return rows


def markdown(record: dict) -> str:
    def show(value, digits=3):
        return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    def steps(value):
        return "never" if value is None else str(value)
    lines = [f"Audit of `{record['original']}` (`{record['command']}`). Membership inference: AUC of telling the "
             "forgotten training images from never-seen ones (0.5: indistinguishable; the target is the retrained "
             "model's, not 0.5), plain and calibrated against the retrained model. The tell: the evaluator's "
             "recognition and 'no object' share on forget outputs, and a linear probe telling each model's forget "
             "outputs from the retrained model's (0.5: indistinguishable).", ""]
    for setting, block in record["settings"].items():
        lines += [f"## {setting}: {block['request']}", "",
                  "| model | AUC | TPR@1% FPR | calibrated AUC | forget recog. | no-object share | probe vs retrained "
                  "| forget FID | relearning: steps to half / back to the original's recog. |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, row in block["summary"].items():
            relearn = ", ".join(f"{v}: {steps(s)} / {steps(row['relearn_steps_to_original'][v])}"
                                for v, s in (row.get("relearn_steps_to_half") or {}).items())
            lines.append(f"| {name} | {show(row['auc'])} | {show(row['tpr_at_0.01_fpr'])} | {show(row['calibrated_auc'])} "
                         f"| {show(row['forget_recognition'])} | {show(row['no_object_share'])} | "
                         f"{show(row['probe_accuracy'])} | {show(row['forget_fid'], 2)} | {relearn or '–'} |")
        curves = {name: row["relearn_curve"] for name, row in block["summary"].items() if row.get("relearn_curve")}
        for variant in dict.fromkeys(v for curve in curves.values() for v in curve):
            points = [step for step, _ in next(iter(curves.values()))[variant]]
            lines += ["", f"Relearning ({variant}): forget-class recognition after each number of fine-tuning steps:", "",
                      "| model | " + " | ".join(f"step {step}" for step in points) + " |",
                      "|---|" + "---|" * len(points)]
            lines += [f"| {name} | " + " | ".join(show(r) for _, r in curve[variant]) + " |"
                      for name, curve in curves.items()]
        for name, stop in (block.get("stops") or {}).items():
            path = ", ".join(f"{entry['step']}: {entry['auc']:.3f}" for entry in stop["path"])
            lines += ["", f"`{name}` stopped on the attack at AUC <= {stop['stop_at_auc']} on validation images "
                          f"(step: AUC, {path}): {stop['message']}."]
        if block.get("retain"):
            lines += ["", "Retain quality on every never-seen image (center inpainting 1/2):", "",
                      "| model | retain FID | retain sim. |", "|---|---|---|"]
            lines += [f"| {name} | {show(m['fid'], 2)} | {show(m['similarity'])} |" for name, m in block["retain"].items()]
        folder = f"{record['name']}/{setting}"   # beside the page: <name>/<setting>/audit.json and its figures
        lines += ["", f"Audit JSON: [`{folder}/audit.json`]({folder}/audit.json).", ""]
        lines += [f"![{figure}]({folder}/{figure})" for figure in block["figures"]] + [""]
    return "\n".join(lines)



def audit_benchmark(config_path: Path, work: Path, results: Path, *, root: Path, command: str = "") -> dict:
    """Both requests of the audit config at `config_path`, each audited against retraining (see the module's docstring);
    every model and audit cached in `work`. Writes <results>/<name>.json and .md (name: the config's, without
    .yaml) and the published audits beside them; paths are read against `root` and recorded relative to it."""
    name = Path(config_path).stem
    results = Path(results) / name
    spec = load_spec(Path(config_path))
    original, retrained = absolute(spec["original"], root), absolute(spec["retrained"], root)
    knobs = load_yaml(UnlearnConfig, absolute(spec["knobs"], root))
    record = {"name": name, "command": command, "original": spec["original"], "knobs": spec["knobs"],
              "knobs_config": to_dict(knobs), "settings": {}, "versions": versions()}

    # 1. classes: the tuned knobs for each method, against the shipped retrained reference
    models = {"original": original}
    for method in spec.get("methods", ["ours"]):
        config = load_yaml(UnlearnConfig, absolute(spec["knobs"], root))
        config.method, config.forget_classes = method, list(spec["forget_classes"])
        models[method] = _unlearned(original, config, work / f"classes-{method}")
    models[RETRAINED] = retrained
    audit = _audit(models, work / "audit-classes", spec, root, forget_classes=list(spec["forget_classes"]))
    published = publish(work / "audit-classes", results / "classes", models, root)
    record["settings"]["classes"] = {"request": f"forget {', '.join(spec['forget_classes'])}",
                                     "models": {k: relative(v, root) for k, v in models.items()},
                                     "audit": relative(published, root), "figures": list(audit["images"].values()),
                                     "summary": summary(audit)}
    write_json_atomic(results.with_suffix(".json"), record)

    # 2. files: the same knobs on a seeded file list, against retraining without those files
    files = spec.get("files")
    if files:
        ids = forget_list(original, files["count"], files.get("seed", 0), work / "forget-files.txt")
        models = {"original": original}
        stops = {}
        for method in files.get("methods", ["ours"]):
            config = load_yaml(UnlearnConfig, absolute(spec["knobs"], root))
            config.method, config.forget_classes, config.forget_files = method, [], str(ids)
            models[method] = _unlearned(original, config, work / f"files-{method}")
            if files.get("stop_at_auc") is not None:   # the same knobs, stopped on the attack (controllers/membership.py)
                config.stop_at_auc = files["stop_at_auc"]
                models[f"{method}-stop"] = _unlearned(original, config, work / f"files-{method}-stop")
                stop = read_json(models[f"{method}-stop"] / "run.json")["membership_stop"]
                stops[f"{method}-stop"] = {key: stop[key] for key in ("stop_at_auc", "path", "chosen", "message")}
        models[RETRAINED] = _unlearned(original, UnlearnConfig(method="retrain", forget_files=str(ids),
                                                               seed=spec.get("seed", 0)), work / "files-retrain")
        audit = _audit(models, work / "audit-files", spec, root, forget_files=ids)
        published = publish(work / "audit-files", results / "files", models, root)
        bootstrap = spec.get("bootstrap", BOOTSTRAP_RESAMPLES)
        key = sha256_text(f"{audit_key(models, spec, root, forget_files=ids)} {bootstrap}")
        quality = _cached(work / "evaluate-files", key, "results.json", lambda: evaluate_model_dirs(
                              {k: str(v) for k, v in models.items()}, TaskConfig("center-inpaint", 0.5),
                              absolute(spec["evaluator"], root), work / "evaluate-files", forget_files=ids,
                              seed=spec.get("seed", 0), overwrite=True, bootstrap=bootstrap))
        record["settings"]["files"] = {
            "request": f"forget {files['count']} training images (seed {files.get('seed', 0)})",
            "ids_sha256": sha256_text(ids.read_text()), "models": {k: relative(v, root) for k, v in models.items()},
            "audit": relative(published, root), "figures": list(audit["images"].values()), "summary": summary(audit),
            "retain": {k: {"fid": quality["metrics"][k]["retain"]["fid"],
                           "similarity": quality["metrics"][k]["retain"]["similarity"]} for k in models},
            "stops": stops}
    write_json_atomic(results.with_suffix(".json"), record)
    write_text_atomic(results.with_suffix(".md"), markdown(record))
    return record
