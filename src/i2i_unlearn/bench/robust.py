"""The robustness benchmark (issue 33): does a method remove the class, or hide it? Every method row of a family,
with its tuned knobs, against an auditor that could tell: benchmarks/robust.py --config benchmarks/robust-<family>.yaml
writes benchmarks/results/robust-<family>.json and .md.

Per model (the original, the held-out retrained seed, every method):
- per-example membership (LiRA, audit/lira.py) against shadows trained with and without the forget class: AUC and
  TPR at 1 % and 0.1 % FPR with intervals over the images;
- relearning (audit/relearn.py) over the attack seeds: the whole model, the encoder alone (decoder frozen),
  fine-tuning on retain images only and 8/4-bit quantization, each read against the band of the retrained seeds
  (a retrained seed against the band of the others);
- the tell (audit/probe.py): the probe's accuracy against the retrained model, with the floor (two retrained seeds)
  and a permutation test;
- retain FID against the retrained seeds by the paired rule, forget recognition, and the unlearning cost against
  retraining's (wall time and optimiser steps).
A model in LiRA's fit cannot be audited by it, so the audit runs twice: relearning and the tell with the band, then
LiRA with the shadows on the original, the held-out retrained seed and the methods (the band's other seeds may be
OUT shadows). Every model and audit is cached in the
work folder: a killed run starts again where it stopped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from i2i_unlearn.bench.audit_benchmark import _cached, _unlearned, publish
from i2i_unlearn.checkpoints import read_json, sha256_file, sha256_text, versions, write_json_atomic, write_text_atomic
from i2i_unlearn.config import TaskConfig, UnlearnConfig, from_dict, load_yaml, read_yaml, to_dict
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.evaluation.audit import AuditOptions, run_audit
from i2i_unlearn.evaluation.audit.probe import PERMUTATIONS, probe_floor
from i2i_unlearn.evaluation.audit.relearn import RelearnConfig
from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
from i2i_unlearn.paths import absolute, relative

ORIGINAL, RETRAINED = "original", "retrained"
FLOOR_MARGIN = 0.05          # the tell: at most the retrained-vs-retrained floor + this
RECOGNITION_MARGIN = 0.05    # forget recognition: at most the retrained models' + this
COST_SHARE = 0.25            # cost: at most this share of retraining's
BAND_TOLERANCE = 1e-9        # relearning: the area outside the band that still counts as inside (rounding)


@dataclass
class RobustMethod:
    knobs: str                        # its knobs file (what benchmarks/tune.py chose on validation)
    starts_from: str | None = None    # undo: the method whose unlearned model it starts from (its cost is added)


@dataclass
class RobustSpec:
    original: str                     # the trained model every method starts from
    evaluator: str
    forget_classes: list[str]
    retrained: list[str]              # retrained seeds: the first is the held-out ideal row; all make the band
    shadows_in: list[str]             # LiRA's shadows trained with the class (none of them audited)
    shadows_out: list[str]            # ... and without it (the band's seeds may be: only the first is audited by LiRA)
    methods: dict[str, RobustMethod]
    relearn: RelearnConfig = field(default_factory=RelearnConfig)
    max_images: int = 200             # members and non-members each
    bootstrap: int = 200              # resamples of the test images for the retain FID comparison
    permutations: int = PERMUTATIONS  # the tell's permutation test
    probe_folds: int = 5
    seed: int = 0


def load_spec(path: Path, root: Path) -> RobustSpec:
    spec = from_dict(RobustSpec, read_yaml(path), f" {path.name}")
    if len(spec.retrained) < 2:
        raise UserError(f"{path.name}: `retrained:` needs at least 2 seeds (the held-out ideal and a band, a floor)")
    for name, method in spec.methods.items():
        if method.starts_from is not None and method.starts_from not in spec.methods:
            raise UserError(f"{path.name}: methods.{name}.starts_from: {method.starts_from!r} is not a method here")
    spec.relearn.check()
    return spec


def _method_models(spec: RobustSpec, work: Path, root: Path) -> dict[str, Path]:
    """Each method's unlearned model, trained once with its knobs (a `starts_from` method after its source)."""
    original, models = absolute(spec.original, root), {}
    pending = dict(spec.methods)
    while pending:
        name, method = next((n, m) for n, m in pending.items() if m.starts_from in (None, *models))
        config = load_yaml(UnlearnConfig, absolute(method.knobs, root))
        config.forget_classes = list(spec.forget_classes)
        start = models[method.starts_from] if method.starts_from else original
        models[name] = _unlearned(start, config, work / f"method-{name}")
        del pending[name]
    return models


def _audit(models: dict[str, Path], out: Path, spec: RobustSpec, root: Path, *, band: list[str] | None = None,
           shadows: bool = False) -> dict:
    options = AuditOptions(max_images=spec.max_images, seed=spec.seed, permutations=spec.permutations,
                           probe_folds=spec.probe_folds,
                           shadows_in=tuple(str(absolute(d, root)) for d in spec.shadows_in) if shadows else (),
                           shadows_out=tuple(str(absolute(d, root)) for d in spec.shadows_out) if shadows else ())
    relearn = spec.relearn if band else None
    key = sha256_text(str({"models": {n: sha256_file(Path(d) / "model.safetensors") for n, d in models.items()},
                           "evaluator": sha256_file(absolute(spec.evaluator, root) / "model.safetensors"),
                           "classes": spec.forget_classes, "options": to_dict(options), "band": band,
                           "relearn": to_dict(relearn) if relearn else None}))
    return _cached(out, key, "audit.json", lambda: run_audit(
        {n: str(d) for n, d in models.items()}, out, evaluator_spec=absolute(spec.evaluator, root),
        reference=RETRAINED, forget_classes=list(spec.forget_classes), options=options, relearn=relearn,
        band_models=band, overwrite=True))


def retain_comparison(results: dict, names: list[str], band: list[str]) -> dict:
    """Each model's retain FID against the retrained seeds' by the paired rule: the image part from the same test
    images and resamples (metrics.paired_difference), the seed part the prediction interval of one more retrained
    seed (t with n - 1 degrees of freedom x their spread x sqrt(1 + 1/n)): a single unlearned model is one draw,
    whose own seed spread is unknown, so it is read as if it were one more seed of the band. A band seed is read
    against the others. {name: {fid, difference, hw, verdict}}."""
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
                   * math.sqrt(1 + 1 / n)) if n >= 2 else None
        difference["hw"] = metrics.combined_half_width(difference["image_hw"], seed_hw)
        out[name] = {"fid": fid, "difference": round(difference["difference"], 4),
                     "hw": None if difference["hw"] is None else round(difference["hw"], 4),
                     "image_hw": difference["image_hw"] and round(difference["image_hw"], 4),
                     "seed_hw": seed_hw and round(seed_hw, 4), "reference_seeds": n,
                     "verdict": metrics.paired_verdict(difference, "lower")}
    return out


def cost(model_dir: Path, retrained_dirs: list[Path], sources: list[Path]) -> dict:
    """Unlearning (with any model it started from) against retraining: wall time and optimiser steps, and the
    host speeds where recorded (a wall time from another machine is not comparable)."""
    runs = [read_json(d / "run.json") for d in (*sources, model_dir)]
    retrains = [read_json(d / "run.json") for d in retrained_dirs]
    seconds, steps = sum(r["wall_time_s"] for r in runs), sum(r["config"]["steps"] for r in runs)
    retrain_seconds = sum(r["wall_time_s"] for r in retrains) / len(retrains)
    retrain_steps = sum(r["steps"] for r in retrains) / len(retrains)
    return {"wall_time_s": round(seconds, 1), "steps": steps, "retrain_wall_time_s": round(retrain_seconds, 1),
            "retrain_steps": retrain_steps, "time_share": round(seconds / retrain_seconds, 4),
            "step_share": round(steps / retrain_steps, 4),
            "hosts": {"unlearning": [r.get("host") for r in runs], "retraining": [r.get("host") for r in retrains]}}


def judge(row: dict, floor: float | None, held_out: dict, retrained_recognition: float) -> list[dict]:
    """The issue's targets for one method row: each {name, value, limit, met}; met None when not measured."""
    targets = []
    for variant, result in (row.get("relearning") or {}).items():
        # inside means neither above (relearned more than retraining) nor below (still hiding what a retrained
        # model shows: a curve below the band gives the unlearning away as surely)
        targets.append({"name": f"relearning {variant}: inside the retrained band at every step",
                        "value": result["band_area"], "limit": 0.0,
                        "met": None if result["band_area"] is None else result["band_area"] <= BAND_TOLERANCE})
    lira, intervals = row.get("lira"), (held_out.get("lira") or {}).get("intervals", {})
    # TPR at low FPR catches a model that restores its forget images too well; AUC, read on both sides, also one that
    # restores them worse than a model that never saw them (unlearning that gives itself away)
    for key, label in (("tpr_at_0.01_fpr", "TPR at 1 % FPR"), ("auc", "AUC")):
        ideal = intervals.get(key)
        targets.append({"name": f"LiRA {label} inside the held-out retrained seed's interval",
                        "value": lira and lira[key], "limit": ideal,
                        "met": None if not lira or not ideal else ideal[0] <= lira[key] <= ideal[1]})
    probe = row.get("probe_accuracy")
    targets.append({"name": f"the tell: probe accuracy at most the floor + {FLOOR_MARGIN}", "value": probe,
                    "limit": None if floor is None else round(floor + FLOOR_MARGIN, 4),
                    "met": None if probe is None or floor is None else probe <= floor + FLOOR_MARGIN})
    retain = row.get("retain") or {}
    targets.append({"name": "retain FID: not worse than the retrained seeds (paired)", "value": retain.get("fid"),
                    "limit": None, "met": None if not retain else retain["verdict"] != "worse"})
    recognition = row.get("forget_recognition")
    limit = round(retrained_recognition + RECOGNITION_MARGIN, 4)
    targets.append({"name": f"forget recognition at most the retrained models' mean + {RECOGNITION_MARGIN}",
                    "value": recognition, "limit": limit, "met": None if recognition is None else recognition <= limit})
    spent = row.get("cost") or {}
    for key, label in (("time_share", "wall time"), ("step_share", "optimiser steps")):
        targets.append({"name": f"cost: at most {COST_SHARE:.0%} of retraining's {label}", "value": spent.get(key),
                        "limit": COST_SHARE, "met": None if key not in spent else spent[key] <= COST_SHARE})
    return targets


def robust_benchmark(config_path: Path, work: Path, results: Path, *, root: Path, command: str = "") -> dict:
    """Every method of the config audited against retraining (the module's docstring); writes <results>/<name>.json
    and .md and the published audits beside them."""
    name = Path(config_path).stem
    spec = load_spec(Path(config_path), root)
    retrained = [absolute(d, root) for d in spec.retrained]
    band = [RETRAINED] + [f"{RETRAINED}-{i + 1}" for i in range(1, len(retrained))]
    methods = _method_models(spec, work, root)
    audited = {ORIGINAL: absolute(spec.original, root), RETRAINED: retrained[0], **methods}
    with_band = {**audited, **dict(zip(band[1:], retrained[1:]))}
    folder = Path(results) / name
    record = {"name": name, "command": command, "config": relative(Path(config_path), root), "spec": to_dict(spec),
              "models": {n: relative(d, root) for n, d in with_band.items()}, "band": band, "versions": versions()}

    relearning = _audit(with_band, work / "audit-band", spec, root, band=band)
    publish(work / "audit-band", folder / "band", with_band, root)
    lira = _audit(audited, work / "audit-lira", spec, root, shadows=True)
    publish(work / "audit-lira", folder / "lira", audited, root)
    key = sha256_text(str({n: sha256_file(d / "model.safetensors") for n, d in with_band.items()}) + str(spec.bootstrap))
    quality = _cached(work / "evaluate", key, "results.json", lambda: evaluate_model_dirs(
        {n: str(d) for n, d in with_band.items()}, TaskConfig("center-inpaint", 0.5), absolute(spec.evaluator, root),
        work / "evaluate", forget_classes=list(spec.forget_classes), seed=spec.seed, split="test", overwrite=True,
        bootstrap=spec.bootstrap))
    retain = retain_comparison(quality, list(with_band), band)

    tell = relearning["tell"]
    tell["floor"] = probe_floor(tell["models"], band, RETRAINED)   # today's rule, also on an audit cached before it
    floor = (tell.get("floor") or {}).get("accuracy")
    rows = {}
    for model in with_band:
        probe = tell["models"][model]["probe_vs_reference"] or {}
        variants = relearning["relearning"]["models"][model]["variants"]
        rows[model] = {
            "lira": (lira["lira"]["models"].get(model) if lira.get("lira") else None),
            "relearning": {v: {"band_area": r["band_area"], "above_band": r["above_band"],
                               "final_recognition": r["final_recognition"], "steps_to_original": r["steps_to_original"]}
                           for v, r in variants.items()},
            "probe_accuracy": probe.get("accuracy"), "probe_p_value": (probe.get("permutation") or {}).get("p_value"),
            "forget_recognition": tell["models"][model]["forget_recognition"],
            "forget_fid": quality["metrics"][model]["forget"]["fid"], "retain": retain[model]}
        if model in methods:
            source = spec.methods[model].starts_from
            rows[model]["cost"] = cost(methods[model], retrained, [methods[source]] if source else [])
    band_recognition = [rows[m]["forget_recognition"] for m in band if rows[m]["forget_recognition"] is not None]
    retrained_recognition = sum(band_recognition) / len(band_recognition) if band_recognition else 0.0
    for model in methods:
        rows[model]["targets"] = judge(rows[model], floor, rows[RETRAINED], retrained_recognition)
    record.update({"rows": rows, "floor": tell.get("floor"), "retrained_recognition": retrained_recognition,
                   "lira_shadows": lira["lira"]["shadows"] if lira.get("lira") else None,
                   "relearn_config": relearning["relearning"]["config"],
                   "audits": {"band": relative(folder / "band" / "audit.json", root),
                              "lira": relative(folder / "lira" / "audit.json", root)},
                   "figures": {"relearning": f"{name}/band/{relearning['images']['relearn']}",
                               "lira_roc": f"{name}/lira/{lira['images'].get('lira_roc', lira['images']['roc'])}"}})
    write_json_atomic(Path(results) / f"{name}.json", record)
    write_text_atomic(Path(results) / f"{name}.md", markdown(record))
    return record


def _show(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(record: dict) -> str:
    """The robustness page: one table per measurement, then every method's targets."""
    rows, band = record["rows"], record["band"]
    floor = record.get("floor") or {}
    lines = [f"# Robustness: {record['name']}", "",
             f"Generated by `{record['command']}` from [{record['name']}.json]({record['name']}.json). "
             f"The reference rows: `original` (must be caught) and `retrained` (a retrained seed held out of the "
             f"shadows and of its own band: the ideal). Retrained band: {', '.join(f'`{m}`' for m in band)}.", "",
             "## Per-example membership (LiRA)", ""]
    if record.get("lira_shadows"):
        lines += [f"{record['lira_shadows']['in']} shadows trained with the class, {record['lira_shadows']['out']} "
                  "without; 95 % intervals over the forgotten images.", "",
                  "| model | AUC | TPR at 1 % FPR | TPR at 0.1 % FPR |", "|---|---|---|---|"]
        for model, row in rows.items():
            lira = row.get("lira")
            if lira:
                cells = [f"{_show(lira[k])} [{_show(lira['intervals'][k][0])}, {_show(lira['intervals'][k][1])}]"
                         if k in lira.get("intervals", {}) else _show(lira[k])
                         for k in ("auc", "tpr_at_0.01_fpr", "tpr_at_0.001_fpr")]
                lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines += ["", f"![per-example ROC]({record['figures']['lira_roc']})"]
    variants = list(dict.fromkeys(v for row in rows.values() for v in row["relearning"]))
    lines += ["", "## Relearning against the retrained band", "",
              f"Mean over the attack seeds ({record['relearn_config']['attack_seeds']}) of the area outside the "
              "retrained band (recognition units; 0: inside at every measured step); **above**: relearned more "
              "than a retrained model at some step.", "",
              "| model | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for model, row in rows.items():
        cells = [f"{_show(r['band_area'])}{' **above**' if r['above_band'] else ''}"
                 for r in (row["relearning"].get(v, {"band_area": None, "above_band": None}) for v in variants)]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    own = [r["band_area"] <= BAND_TOLERANCE for m in band for r in rows[m]["relearning"].values()
           if r["band_area"] is not None]
    lines += ["", f"What retraining itself achieves: a retrained seed read against the band of the others is inside "
                  f"at every step in {sum(own)} of {len(own)} (seed, attack) pairs; with few seeds the band is narrow "
                  "and this target is stricter than retraining.",
              "", f"![relearning]({record['figures']['relearning']})", "",
              "## The tell, retain quality, forgetting and cost", "",
              f"Probe accuracy against `retrained`; the floor (the mean of "
              f"{', '.join(f'`{m}`' for m in floor.get('models', []))} against it): {_show(floor.get('accuracy'))}. "
              "Retain FID against the other retrained seeds: the paired image part plus the prediction interval of "
              "one more retrained seed (bench/robust.py retain_comparison).", "",
              "| model | probe acc. | p (permutation) | forget recog. | forget FID | retain FID | vs retrained | "
              "cost: time / steps vs retraining |", "|---|---|---|---|---|---|---|---|"]
    for model, row in rows.items():
        spent = row.get("cost")
        shown = f"{spent['time_share']:.0%} / {spent['step_share']:.0%}" if spent else "–"
        lines.append(f"| {model} | {_show(row['probe_accuracy'])} | {_show(row['probe_p_value'])} | "
                     f"{_show(row['forget_recognition'])} | {_show(row['forget_fid'], 2)} | "
                     f"{_show(row['retain']['fid'], 2)} | {row['retain']['verdict']} "
                     f"({row['retain']['difference']:+.2f} ± {_show(row['retain']['hw'], 2)}) | {shown} |")
    lines += ["", "## Targets (issue 33)", "", "| method | met | missed (value vs limit) |", "|---|---|---|"]
    for model, row in rows.items():
        if "targets" not in row:
            continue
        judged = [t for t in row["targets"] if t["met"] is not None]
        missed = "; ".join(f"{t['name']} ({_show(t['value'])} vs {_show(t['limit'])})" for t in judged if not t["met"])
        lines.append(f"| {model} | {sum(t['met'] for t in judged)}/{len(judged)} | {missed or '–'} |")
    return "\n".join(lines) + "\n"
