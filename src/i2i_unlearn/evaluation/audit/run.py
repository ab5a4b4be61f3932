"""The `i2i-unlearn audit` command: membership inference, the tell and relearning on the models given; writes
audit.json and its figures."""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

import torch

from i2i_unlearn.checkpoints import versions, write_json_atomic
from i2i_unlearn.config import TaskConfig, to_dict
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.audit.cache import cached_tensor, ids_sha256
from i2i_unlearn.evaluation.audit.lira import (
    MIN_SHADOWS,
    lira_audit,
    restoration_scores,
)
from i2i_unlearn.evaluation.audit.membership import (
    DEFAULT_MASKS,
    DEFAULT_TIMESTEPS,
    FPR_LEVELS,
    conditions,
    membership_audit,
    restoration_errors,
)
from i2i_unlearn.evaluation.audit.plots import lira_roc_plot, relearn_plot, roc_plot
from i2i_unlearn.evaluation.audit import probe
from i2i_unlearn.evaluation.audit.probe import LOW_CONFIDENCE, tell_audit
from i2i_unlearn.evaluation.audit.relearn import relearning_attack
from i2i_unlearn.evaluation.audit.sets import audit_sets, model_forget_request
from i2i_unlearn.evaluation.collect import collect_set
from i2i_unlearn.evaluation.embedders import load_embedder
from i2i_unlearn.evaluation.grids import image_grid, show_input
from i2i_unlearn.evaluation.scoring import fid_between
from i2i_unlearn.lineage import input_folders, training_data_config
from i2i_unlearn.models import I2IModel, load_model
from i2i_unlearn.runs import prepare_output_dir
from i2i_unlearn.tasks import check_task


@dataclass
class AuditOptions:
    split: str = "test"
    max_images: int | None = 200          # members and non-members each (sampled, seeded)
    task: TaskConfig = field(default_factory=lambda: TaskConfig("center-inpaint", 0.5))  # tell, grid, relearning
    masks: list[TaskConfig] = field(default_factory=lambda: list(DEFAULT_MASKS))
    timesteps: tuple[int, ...] = DEFAULT_TIMESTEPS
    probe_folds: int = 5
    # the tell's permutation test (0: none); probe.PERMUTATIONS when the options are made (the tests lower it)
    permutations: int = field(default_factory=lambda: probe.PERMUTATIONS)
    seed: int = 0
    # per-example membership inference (lira.py): model folders trained WITH the forget images (the original
    # recipe, other seeds) and WITHOUT them (retrained); none of them may be audited
    shadows_in: tuple[str, ...] = ()
    shadows_out: tuple[str, ...] = ()

def relearning_pools(sets) -> dict:
    """What the fine-tuning attacks train on: the forgotten training images (the members), and the training
    images of every other class (retain-finetune)."""
    train = sets.train
    forget = torch.tensor([train.class_names.index(n) for n in sets.forget_class_names])
    return {"forget": sets.members, "retain": train.subset(torch.nonzero(~torch.isin(train.labels, forget)).flatten())}

def _load_models(model_dirs: dict[str, str | Path]) -> dict[str, I2IModel]:
    return {name: load_model(directory) for name, directory in model_dirs.items()}

def check_shadows(options: AuditOptions, models: dict[str, I2IModel]) -> dict | None:
    """The shadow models of the per-example attack, loaded, or None without them. An audited model among the
    shadows would be scored by a fit that knows it: refused, as are shadows of another family."""
    if not options.shadows_in and not options.shadows_out:
        return None
    if len(options.shadows_in) < MIN_SHADOWS or len(options.shadows_out) < MIN_SHADOWS + 1:
        raise UserError(f"the per-example attack needs at least {MIN_SHADOWS} --shadow-in and {MIN_SHADOWS + 1} "
                        f"--shadow-out model folders, got {len(options.shadows_in)} and {len(options.shadows_out)}")
    loaded = {kind: [load_model(d) for d in dirs] for kind, dirs in
              (("in", options.shadows_in), ("out", options.shadows_out))}
    audited = {m.pretrained_info.get("weights_sha256"): name for name, m in models.items()}
    family = next(iter(models.values())).family
    for kind, dirs in (("in", options.shadows_in), ("out", options.shadows_out)):
        for directory, shadow in zip(dirs, loaded[kind]):
            if shadow.family != family:
                raise UserError(f"shadow {directory} is a {shadow.family} model; the audited models are {family}")
            name = audited.get(shadow.pretrained_info.get("weights_sha256"))
            if name is not None:
                raise UserError(f"shadow {directory} has the weights of the audited model {name!r}: a model in the "
                                "fit cannot be audited by it (hold it out)")
    return loaded


def lira_membership(models: dict, sets, options: AuditOptions, progress=None, cache_dir=None) -> dict:
    """LiRA on the forget members: the restoration scores of every shadow and audited model under the same
    conditions and randomness as the global attack, then lira.lira_audit. With `cache_dir`, each model's scores
    are kept there (cache.py): a shadow is scored once for every audit of the same images."""
    depends = {"members": ids_sha256(sets.members), "masks": [to_dict(t) for t in options.masks],
               "timesteps": list(options.timesteps), "seed": options.seed}

    def scores(model, label):
        def compute():
            conds = conditions(model, options.masks, options.timesteps)
            errors = restoration_errors(model, sets.members, conds, options.seed, stream=0,
                                        description=f"per-example attack: {label}")
            return restoration_scores(errors)
        return cached_tensor(cache_dir, "lira", {"model": model.pretrained_info["weights_sha256"], **depends}, compute)
    in_scores = torch.stack([scores(m, f"IN shadow {i + 1}") for i, m in enumerate(models["in"])])
    out_scores = torch.stack([scores(m, f"OUT shadow {i + 1}") for i, m in enumerate(models["out"])])
    audited = {name: scores(model, name) for name, model in models["audited"].items()}
    if progress:
        progress("per-example attack scored")
    result = lira_audit(audited, in_scores, out_scores, seed=options.seed)
    result["shadow_dirs"] = {"in": list(options.shadows_in), "out": list(options.shadows_out)}
    result["members"] = len(sets.members)
    return result


def run_audit(model_dirs: dict[str, str | Path], out_dir: str | Path, *, evaluator_spec: str | Path,
              reference: str | None = None, tell_reference: str | None = None,
              forget_classes: list[str] | None = None, forget_files: str | Path | None = None,
              options: AuditOptions | None = None, relearn=None, band_models: list[str] | None = None,
              overwrite: bool = False, progress=print, cache_dir: str | Path | None = None) -> dict:
    """The whole audit of `model_dirs` (name -> folder; the first one's training data defines the
    sets). `reference` names one of them: it calibrates the attack (the retrained model, or the
    original, so that the retrained model gets a calibrated score too). `tell_reference` (default:
    `reference`) is what the probe compares each model's forget outputs with: the retrained model;
    relearning paces are given relative to it too. `relearn` (a relearn.RelearnConfig) adds the
    relearning attacks; `band_models` (retrained models of several seeds, audited too) make their band.
    `cache_dir` keeps each model's relearning curves and LiRA scores for the next audit (cache.py).
    Every input is checked before anything is written; no input folder is written to."""

    options = options or AuditOptions()
    started = datetime.datetime.now(datetime.timezone.utc)
    if not model_dirs:
        raise UserError("give at least one model (--model DIR or NAME=DIR)")
    tell_reference = tell_reference or reference
    for role, name in (("reference", reference), ("tell reference", tell_reference)):
        if name is not None and name not in model_dirs:
            raise UserError(f"the {role} {name!r} is not one of the models: {', '.join(model_dirs)}")
    check_task(options.task)
    for task in options.masks:
        check_task(task)
    if options.max_images is not None and options.max_images < 2:
        raise UserError(f"--max-images must be at least 2, got {options.max_images}")
    models = _load_models(model_dirs)
    shadows = check_shadows(options, models)
    evaluator_spec = str(evaluator_spec)
    evaluator = load_embedder(evaluator_spec)
    first = next(iter(models.values()))
    data = training_data_config(first)
    request = {}
    if forget_classes:
        request["forget_classes"] = forget_classes
    if forget_files:
        request["forget_files"] = forget_files
    if not request:
        request = model_forget_request(models, model_dirs)
    trained = (first.pretrained_info.get("training") or {}).get("classes")
    sets = audit_sets(data, **request, split=options.split, max_images=options.max_images, seed=options.seed,
                      trained_classes=trained)
    if relearn is not None and relearn.steps > 0:
        relearn.check()
        if sets.kind != "classes":
            raise UserError("the relearning attack measures forget-class recognition: it needs --forget-classes "
                            "(a file-list request has no class to relearn)")
        if not evaluator.has_classes:
            raise UserError("the relearning attack needs a classifier evaluator (forget-class recognition)")
    out_dir = prepare_output_dir(out_dir, overwrite=overwrite, resume=False,
                                 protected=input_folders(*model_dirs.values(), evaluator_spec.split(":", 1)[-1], data))

    evaluator_classes = evaluator.class_names if evaluator.has_classes else []
    forget_indices = [evaluator_classes.index(n) for n in sets.forget_class_names if n in evaluator_classes]
    # 1. membership inference
    membership = membership_audit(models, sets, reference=reference, masks=options.masks,
                                  timesteps=options.timesteps, seed=options.seed, progress=progress)
    lira = None
    if shadows is not None:
        lira = lira_membership({**shadows, "audited": models}, sets, options, progress, cache_dir)
    # 2. the tell, on the inputs `evaluate` scores as forget: never-seen images of the forget
    # classes, or for a file list the forgotten images themselves
    # read in batches: the evaluator's features and logits of every output are kept, and the grid's images
    tell_images = sets.non_members if sets.kind == "classes" else sets.members
    shown = torch.linspace(0, len(tell_images) - 1, min(8, len(tell_images))).round().long()
    collected = collect_set(models, tell_images, options.task, options.seed, evaluator, noise=False, keep=shown,
                            description="the tell: forget outputs")
    if progress:
        progress("forget outputs generated")
    tell, floor = tell_audit(evaluator, {name: collected.rows[name].whole for name in models},
                             reference=tell_reference, forget_indices=forget_indices, folds=options.probe_folds,
                             seed=options.seed, floor_models=list(band_models or ()),
                             permutations=options.permutations)
    for name in models:
        # of every image, also when the rows the probe reads are a sample (collect.py: above INTERVAL_IMAGES)
        tell[name]["forget_fid"] = fid_between(collected.rows[name], collected.truths[name]) \
            if len(tell_images) >= 2 else None
    image_grid([("input", show_input(collected.shown["truth"], collected.shown["masks"])),
                *((name, collected.shown[name]) for name in models),
                ("ground truth", collected.shown["truth"])], out_dir / "grid_forget.png")
    figures = {"grid_forget": "grid_forget.png", "roc": roc_plot(membership, out_dir / "roc.png").name}
    if lira is not None:
        figures["lira_roc"] = lira_roc_plot(lira, out_dir / "lira_roc.png").name
    # 3. relearning
    relearning = None
    if relearn is not None and relearn.steps > 0:
        relearning = relearning_attack(models, relearning_pools(sets), sets.non_members, evaluator, forget_indices,
                                       relearn, task=options.task, reference=tell_reference,
                                       band_models=list(band_models or ()), progress=progress,
                                       cache_dir=cache_dir)
        figures["relearn"] = relearn_plot(relearning, out_dir / "relearn.png").name

    result = {
        "schema_version": 1, "kind": "audit",
        "created": started.isoformat(timespec="seconds"),
        "dataset": sets.members.name, "forget": sets.describe(),
        "reference": reference, "tell_reference": tell_reference,
        "models": {name: {"dir": str(model_dirs[name]), "family": model.family,
                          "weights_sha256": getattr(model, "pretrained_info", {}).get("weights_sha256", ""),
                          "method": ((getattr(model, "pretrained_info", {}).get("unlearning") or {})
                                     .get("config", {}).get("method"))} for name, model in models.items()},
        "evaluator": evaluator.describe(),
        "membership": membership,
        "lira": lira,
        "tell": {"task": to_dict(options.task), "inputs": "non-members (never-seen forget-class images)"
                 if sets.kind == "classes" else "members (the forgotten images)", "count": len(tell_images),
                 "low_confidence_threshold": LOW_CONFIDENCE, "probe_reference": tell_reference, "models": tell,
                 "floor": floor},
        "relearning": relearning,
        "images": figures,
        "settings": {"seed": options.seed, "split": options.split, "max_images": options.max_images,
                     "masks": [to_dict(t) for t in options.masks], "timesteps": list(options.timesteps),
                     "score": "per-image loss of the family on the hidden region (MAE: pixel MSE of the hidden "
                              "patches in [-1, 1]; diffusion: denoising MSE at each timestep; VQ-GAN: hidden-token "
                              "cross-entropy), -mean log over the conditions",
                     "calibrated_score": "-(mean log error - mean log error of the reference model), per image",
                     "fpr_levels": list(FPR_LEVELS), "probe_folds": options.probe_folds},
        "versions": versions(),
    }
    write_json_atomic(out_dir / "audit.json", result)
    return result

def summary_lines(result: dict) -> list[str]:
    """A terminal table of the audit."""
    lines = [f"membership inference ({result['forget']['members']['count']} forgotten vs "
             f"{result['forget']['non_members']['count']} never-seen; calibrated against: {result['reference'] or '-'}; "
             f"probe against: {result.get('tell_reference') or '-'})",
             f"{'model':24s} {'AUC':>7s} {'TPR@1%':>7s} {'TPR@5%':>7s} {'cal AUC':>8s} {'no-obj':>7s} "
             f"{'recog':>7s} {'probe':>7s}"]
    for name, entry in result["membership"]["models"].items():
        attack, calibrated, tell = entry["attack"], entry["calibrated"], result["tell"]["models"][name]

        def show(value, width):
            return f"{value:{width}.3f}" if value is not None else f"{'-':>{width}s}"
        probe = tell["probe_vs_reference"]["accuracy"] if tell["probe_vs_reference"] else None
        lines.append(f"{name[:24]:24s} {show(attack['auc'], 7)} {show(attack['tpr_at_0.01_fpr'], 7)} "
                     f"{show(attack['tpr_at_0.05_fpr'], 7)} {show(calibrated['auc'] if calibrated else None, 8)} "
                     f"{show(tell['no_object_share'], 7)} {show(tell['forget_recognition'], 7)} {show(probe, 7)}")
    if result.get("lira"):
        lira = result["lira"]
        lines.append(f"per-example attack (LiRA, {lira['shadows']['in']} IN and {lira['shadows']['out']} OUT shadows, "
                     f"{lira['members']} forgotten images; 95 % intervals over the images)")
        for name, entry in lira["models"].items():
            intervals = entry.get("intervals", {})
            shown = [f"{key} {entry[key]:.3f} [{intervals[key][0]:.3f}, {intervals[key][1]:.3f}]"
                     if key in intervals else f"{key} {entry[key]:.3f}"
                     for key in ("auc", "tpr_at_0.01_fpr", "tpr_at_0.001_fpr")]
            lines.append(f"  {name}: " + ", ".join(shown))
    if result.get("relearning"):
        lines.append("relearning: steps to half the original's recognition "
                     f"({result['relearning'].get('half_original_recognition')}) / back to the original's "
                     f"({result['relearning'].get('original_return_level')}); None: not within the budget")
        for name, entry in result["relearning"]["models"].items():
            parts = [f"{variant}: {v['steps_to_half_original']} / {v.get('steps_to_original')}"
                     for variant, v in entry["variants"].items()]
            lines.append(f"  {name}: " + ", ".join(parts))
    return lines
