"""The audit of method.md section 4b: does forgetting survive an attacker?

- Membership inference. Each image is scored by how well a model restores it: the family's own
  loss on the hidden region (MAE: pixel MSE of the hidden patches; diffusion: the denoising error
  at fixed timesteps; VQ-GAN: cross-entropy of the hidden tokens) under several masks, the same
  masks and randomness for every model. Members are the forgotten training images, non-members
  never-seen images (the test split) of the same classes. The plain attack scores an image by
  -mean log error (a low error says "seen"); the calibrated attack (LiRA / U-MIA style difficulty
  calibration) by -(mean log error - mean log error of a reference model), so an image that is
  simply easy for every model no longer looks like a member. AUC and TPR at 1 % and 5 % FPR;
  success is "as indistinguishable as the retrained model", not AUC 0.5.
- The tell: whether a model's forget outputs give the forgetting away. (a) The shipped evaluator
  has a "no object" class (trained on noise, grey and mean-image fills): its share on the forget
  outputs; with an evaluator without that class, the share of outputs whose top class
  probability is below LOW_CONFIDENCE stands in (both are recorded whenever they can be). (b) A
  linear probe (logistic regression in torch, k-fold cross-validated, folds split by input image)
  on the evaluator's features, trained to tell one model's forget outputs from the reference's
  for the same inputs: 0.5 = indistinguishable.
- Per-image forgetting: a file list has no never-seen twin, so its members are the forgotten
  images and its non-members the never-seen images of the classes they belong to;
  `forgotten_files_split` gives `evaluate` the forgotten images as its forget set and every
  never-seen image as its retain set (retain quality as for classes).

`run_audit` (the `i2i-unlearn audit` command) writes audit.json, roc.png, grid_forget.png and,
with a relearning budget (relearn.py), relearn.png.
"""
from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from i2i_unlearn.checkpoints import atomic_write, sha256_text, versions, write_json_atomic
from i2i_unlearn.config import DataConfig, TaskConfig, to_dict
from i2i_unlearn.data import ImageSet, UnlearnSplit, load_split
from i2i_unlearn.data.splits import read_id_list
from i2i_unlearn.errors import UserError
from i2i_unlearn.models import I2IModel
from i2i_unlearn.tasks import check_task, make_mask

DEFAULT_MASKS = [TaskConfig("center-inpaint", 0.25), TaskConfig("center-inpaint", 0.5),
                 TaskConfig("center-inpaint", 0.75), TaskConfig("outpaint", 0.5), TaskConfig("random-patches", 0.5)]
DEFAULT_TIMESTEPS = (100, 250, 500)   # diffusion: denoising error at these training timesteps
FPR_LEVELS = (0.01, 0.05)
LOW_CONFIDENCE = 0.5                  # top class probability below this: "no confident class"
ROC_POINTS = 201                      # at most this many points of each ROC curve in audit.json
EPS = 1e-12
NO_OBJECT = "no object"               # the evaluator's extra class (evaluator.py)


# --- which images: members and non-members ------------------------------------------------------

@dataclass
class AuditSets:
    """Forgotten training images (members) and never-seen images of the same classes (non-members)."""
    members: ImageSet
    non_members: ImageSet
    forget_class_names: list[str]
    kind: str                       # "classes" or "files"
    split: str                      # the part the non-members come from: test (or val)
    all_members: int = 0            # forgotten training images before sampling
    held_out: ImageSet | None = None  # the whole held-out part (retain quality for file lists)
    parts: dict | None = None       # counts and id hashes of train, val, test (Split.describe)
    train: ImageSet | None = None   # the whole train part (of the classes trained on)

    def describe(self) -> dict:
        def one(images: ImageSet) -> dict:
            return {"count": len(images), "classes": sorted({images.class_names[i] for i in images.labels.tolist()}),
                    "ids_sha256": sha256_text("\n".join(images.ids))}
        return {"kind": self.kind, "forget_classes": self.forget_class_names, "non_member_split": self.split,
                "members": {**one(self.members), "forgotten_total": self.all_members,
                            "source": "train split: the forgotten images"},
                "non_members": {**one(self.non_members),
                                "source": f"{self.split} split: never seen, same classes"}}


def _sample(images: ImageSet, limit: int | None, seed: int) -> ImageSet:
    if limit is None or len(images) <= limit:
        return images
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:limit]
    return images.subset(order.sort().values)


def audit_sets(data: DataConfig, *, forget_classes: list[str] | None = None, forget_files: str | Path | None = None,
               forgotten_id_hashes: frozenset[str] | None = None, split: str = "test",
               max_images: int | None = None, seed: int = 0, trained_classes: list[str] | None = None) -> AuditSets:
    """Members and non-members of a forget request: classes, a file of image ids, or the sha256 of
    the ids a model folder forgot (its forgotten_ids.sha256). At most `max_images` of each, sampled."""
    if split not in ("test", "val"):
        raise UserError(f"non-members come from a held-out split: test or val, got {split!r}")
    given = [x for x in (forget_classes, forget_files, forgotten_id_hashes) if x]
    if not given:
        raise UserError("the forget set is empty: name forget classes (--forget-classes) or a forget file list "
                        "(--forget-files)")
    if len(given) > 1:
        raise UserError("give forget classes or a forget file list, not both")
    parts = load_split(data)
    train, held_out = parts.train, parts.part(split)
    if trained_classes:  # a model trained on some classes only: the rest are no one's members
        keep = torch.isin(train.labels, torch.tensor(train.class_indices(trained_classes)))
        train = train.subset(torch.nonzero(keep).flatten())
        keep = torch.isin(held_out.labels, torch.tensor(held_out.class_indices(trained_classes)))
        held_out = held_out.subset(torch.nonzero(keep).flatten())
    if forget_classes:
        labels = train.class_indices(forget_classes)
        if trained_classes:
            never = [n for n in forget_classes if n.lower() not in {c.lower() for c in trained_classes}]
            if never:
                raise UserError(f"the model was never trained on {', '.join(never)}; its classes: "
                                f"{', '.join(trained_classes)}")
        member_mask = torch.isin(train.labels, torch.tensor(labels))
        kind = "classes"
    else:
        if forget_files:
            wanted = set(read_id_list(forget_files))
            held = set(parts.val.ids) | set(parts.test.ids)
            in_held_out = wanted & held
            if in_held_out:
                raise UserError(f"{len(in_held_out)} id(s) of {forget_files} are held-out validation or test "
                                f"images, e.g. {sorted(in_held_out)[0]}; no model trained on them")
            missing = wanted - set(train.ids)
            if missing:
                raise UserError(f"{len(missing)} id(s) of {forget_files} are not training images of "
                                f"{train.name}, e.g. {sorted(missing)[0]}")
            member_mask = torch.tensor([i in wanted for i in train.ids], dtype=torch.bool)
        else:
            member_mask = torch.tensor([sha256_text(i) in forgotten_id_hashes for i in train.ids], dtype=torch.bool)
        labels = sorted(set(train.labels[member_mask].tolist()))
        kind = "files"
    if not member_mask.any():
        raise UserError("the forget set is empty: no training image matches the forget request")
    members = train.subset(torch.nonzero(member_mask).flatten())
    non_members = held_out.subset(torch.nonzero(torch.isin(held_out.labels, torch.tensor(labels))).flatten())
    if len(non_members) == 0:
        raise UserError(f"no never-seen {split} images of {', '.join(train.class_names[i] for i in labels)}")
    return AuditSets(_sample(members, max_images, seed), _sample(non_members, max_images, seed + 1),
                     [train.class_names[i] for i in labels], kind, split, len(members), held_out, parts.describe(), train)


def forgotten_files_split(sets: AuditSets) -> UnlearnSplit:
    """For `evaluate` of a file-list request: the forgotten images themselves as the forget set
    (no never-seen twin exists) and every never-seen image of the split as the retain set."""
    return UnlearnSplit(forget_train=sets.members, retain_train=sets.held_out, forget_eval=sets.members,
                        retain_eval=sets.held_out, forget_class_names=sets.forget_class_names, eval_split=sets.split,
                        parts=sets.parts, train=sets.train, forget_kind="files")


def model_forget_request(models: dict[str, I2IModel], model_dirs: dict[str, str | Path]) -> dict:
    """What the given models record as forgotten, for commands run without --forget-classes or
    --forget-files: every class a chain of requests forgot, else the image ids a file-list request
    forgot (the sha256 of each, from the model folder's forgotten_ids.sha256)."""
    from i2i_unlearn.runs import forgotten_classes
    from i2i_unlearn.unlearn import forgotten_id_hashes
    for model in models.values():
        classes = forgotten_classes(getattr(model, "pretrained_info", {}))
        if classes:
            return {"forget_classes": classes}
    for name, model in models.items():
        hashes = forgotten_id_hashes(model_dirs[name], model)
        if hashes:
            return {"forgotten_id_hashes": hashes}
    return {}


# --- membership inference -----------------------------------------------------------------------

def _condition_name(task: TaskConfig, timestep: int | None) -> str:
    return f"{task.name} {task.ratio:g}" + (f" t={timestep}" if timestep is not None else "")


def conditions(model: I2IModel, masks: list[TaskConfig], timesteps=DEFAULT_TIMESTEPS) -> list[tuple]:
    """(mask task, timestep or None) pairs; timesteps only for a family whose shared randomness
    has one (the diffusion family's `timesteps`)."""
    for task in masks:
        check_task(task)
    probe = torch.zeros(1, *model.image_shape)
    has_time = "timesteps" in model.sample_context(probe, make_mask(masks[0], 1, probe.shape[-1], model.mask_grid),
                                                   torch.Generator().manual_seed(0))
    if has_time:
        limit = model.config.num_train_timesteps
        bad = [t for t in timesteps if not 0 <= t < limit]
        if bad or not timesteps:
            raise UserError(f"diffusion timesteps must lie in [0, {limit}), got {list(timesteps)}")
    return [(task, t) for task in masks for t in (timesteps if has_time else (None,))]


@torch.no_grad()
def restoration_errors(model: I2IModel, images: torch.Tensor, conds: list[tuple], seed: int = 0,
                       stream: int = 0, description: str = "membership attack") -> torch.Tensor:
    """(N, K) per-image loss of the family on the hidden region under each of K conditions. The
    mask and the randomness of image i under condition k depend on (seed, stream, i, k) only, so
    every model sees the same inputs."""
    from tqdm.auto import tqdm
    from i2i_unlearn.evaluation.generation import PROGRESS_DELAY_S
    model.eval()
    errors = torch.empty(len(images), len(conds))
    for i in tqdm(range(len(images)), desc=description, unit="image", delay=PROGRESS_DELAY_S, leave=False,
                  dynamic_ncols=True):
        x = images[i:i + 1]
        for k, (task, timestep) in enumerate(conds):
            generator = torch.Generator().manual_seed(((seed * 1_000_003 + stream) * 100_003 + i) * 101 + k)
            mask = make_mask(task, 1, x.shape[-1], model.mask_grid, generator)
            ctx = model.sample_context(x, mask, generator)
            if timestep is not None:
                ctx["timesteps"] = torch.full_like(ctx["timesteps"], timestep)
            errors[i, k] = float(model.training_loss(x, mask, ctx))
    return errors


def attack_scores(errors: torch.Tensor, reference_errors: torch.Tensor | None = None) -> torch.Tensor:
    """Membership score per image, higher = more likely a member: -mean log error, or with a
    reference model -(mean log error - mean log reference error) (difficulty calibration)."""
    log_error = torch.log(errors.double() + EPS)
    if reference_errors is not None:
        log_error = log_error - torch.log(reference_errors.double() + EPS)
    return -log_error.mean(dim=1)


def roc_summary(member_scores: torch.Tensor, non_member_scores: torch.Tensor) -> dict:
    """AUC, TPR at FPR_LEVELS (the best TPR whose FPR does not exceed the level) and the ROC curve."""
    from torchmetrics.functional.classification import binary_auroc, binary_roc
    if len(member_scores) == 0 or len(non_member_scores) == 0:
        raise UserError("membership inference needs members and non-members")
    preds = torch.cat([member_scores, non_member_scores]).double()
    # into [0, 1] by a rank-preserving map: torchmetrics would take scores outside it for logits,
    # and a sigmoid of large scores rounds distinct ones to the same 1.0
    spread = preds.max() - preds.min()
    preds = (preds - preds.min()) / spread if spread > 0 else torch.zeros_like(preds)
    target = torch.cat([torch.ones(len(member_scores)), torch.zeros(len(non_member_scores))]).long()
    fpr, tpr, _ = binary_roc(preds, target)
    auc = float(binary_auroc(preds, target))
    tpr_at = {f"tpr_at_{level:g}_fpr": float(tpr[fpr <= level + 1e-12].max()) for level in FPR_LEVELS}
    keep = torch.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).round().long().unique()
    return {"auc": round(auc, 5), **{k: round(v, 5) for k, v in tpr_at.items()},
            "members": len(member_scores), "non_members": len(non_member_scores),
            "roc": {"fpr": [round(float(v), 5) for v in fpr[keep]], "tpr": [round(float(v), 5) for v in tpr[keep]]}}


def membership_audit(models: dict[str, I2IModel], sets: AuditSets, *, reference: str | None = None,
                     masks: list[TaskConfig] = DEFAULT_MASKS, timesteps=DEFAULT_TIMESTEPS, seed: int = 0,
                     progress=None) -> dict:
    """Per model: the plain attack, the attack calibrated against `reference` (a model of
    `models`), and the AUC of each condition alone."""
    errors = {}
    conds = None
    for name, model in models.items():
        model_conds = conditions(model, masks, timesteps)
        if conds is not None and [_condition_name(*c) for c in model_conds] != [_condition_name(*c) for c in conds]:
            raise UserError(f"{name} is of another family than the other models: the audit compares one family")
        conds = model_conds
        errors[name] = (restoration_errors(model, sets.members.images, conds, seed, stream=0,
                                           description=f"membership attack on {name}: members"),
                        restoration_errors(model, sets.non_members.images, conds, seed, stream=1,
                                           description=f"membership attack on {name}: non-members"))
        if progress:
            progress(f"membership errors of {name}")
    result = {}
    for name, (member_errors, non_member_errors) in errors.items():
        entry = {"attack": roc_summary(attack_scores(member_errors), attack_scores(non_member_errors)),
                 "calibrated": None,
                 "mean_log_error": {"members": round(float(torch.log(member_errors + EPS).mean()), 5),
                                    "non_members": round(float(torch.log(non_member_errors + EPS).mean()), 5)},
                 "per_condition_auc": {
                     _condition_name(*c): roc_summary(-torch.log(member_errors[:, k:k + 1] + EPS).mean(1),
                                                      -torch.log(non_member_errors[:, k:k + 1] + EPS).mean(1))["auc"]
                     for k, c in enumerate(conds)}}
        if reference is not None and name != reference:
            ref_members, ref_non_members = errors[reference]
            entry["calibrated"] = roc_summary(attack_scores(member_errors, ref_members),
                                              attack_scores(non_member_errors, ref_non_members))
        result[name] = entry
    return {"conditions": [_condition_name(*c) for c in conds], "models": result}


# --- the tell -----------------------------------------------------------------------------------

def _fold_ids(n: int, folds: int, generator: torch.Generator, order: torch.Tensor | None = None) -> torch.Tensor:
    order = torch.randperm(n, generator=generator) if order is None else order
    ids = torch.empty(n, dtype=torch.long)
    ids[order] = torch.arange(n) % folds
    return ids


def _fit_logistic(x: torch.Tensor, y: torch.Tensor, weight_decay: float, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-balanced L2-regularised logistic regression by L-BFGS (full batch, deterministic)."""
    w = torch.zeros(x.shape[1], dtype=x.dtype, requires_grad=True)
    b = torch.zeros((), dtype=x.dtype, requires_grad=True)
    positives = y.mean()
    sample_weight = torch.where(y > 0.5, 0.5 / positives, 0.5 / (1 - positives))
    optimizer = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = (F.binary_cross_entropy_with_logits(x @ w + b, y, reduction="none") * sample_weight).mean()
        loss = loss + weight_decay * (w ** 2).sum()
        loss.backward()
        return loss
    with torch.enable_grad():
        optimizer.step(closure)
    return w.detach(), b.detach()


def linear_probe(features_a: torch.Tensor, features_b: torch.Tensor, *, folds: int = 5, seed: int = 0,
                 paired: bool = False, weight_decay: float = 1e-2, steps: int = 200) -> dict:
    """k-fold cross-validated balanced accuracy of a logistic regression telling A from B
    (0.5 = indistinguishable). `paired`: row i of A and of B come from the same input and go to
    the same fold, so the probe never sees the twin of a test output."""
    n_a, n_b = len(features_a), len(features_b)
    if folds < 2:
        raise UserError(f"the probe needs at least 2 folds, got {folds}")
    if min(n_a, n_b) < folds:
        raise UserError(f"the probe needs at least {folds} outputs per side (one per fold), got {n_a} and {n_b}")
    if paired and n_a != n_b:
        raise ValueError("paired features need the same count on both sides")
    generator = torch.Generator().manual_seed(seed)
    fold_a = _fold_ids(n_a, folds, generator)
    fold_b = fold_a if paired else _fold_ids(n_b, folds, generator)
    x_all = torch.cat([features_a, features_b]).double()
    y_all = torch.cat([torch.ones(n_a), torch.zeros(n_b)]).double()
    fold_all = torch.cat([fold_a, fold_b])
    accuracies = []
    for fold in range(folds):
        train, test = fold_all != fold, fold_all == fold
        mean, std = x_all[train].mean(0), x_all[train].std(0).clamp(min=1e-6)
        w, b = _fit_logistic((x_all[train] - mean) / std, y_all[train], weight_decay, steps)
        predicted = (((x_all[test] - mean) / std) @ w + b > 0).double()
        truth = y_all[test]
        per_class = [float((predicted[truth == c] == c).double().mean()) for c in (1.0, 0.0)]
        accuracies.append(sum(per_class) / 2)
    mean_accuracy = sum(accuracies) / folds
    spread = math.sqrt(sum((a - mean_accuracy) ** 2 for a in accuracies) / max(1, folds - 1))
    return {"accuracy": round(mean_accuracy, 4), "accuracy_std": round(spread, 4),
            "fold_accuracies": [round(a, 4) for a in accuracies], "folds": folds, "count": [n_a, n_b],
            "classifier": f"logistic regression (torch, L-BFGS), standardised features, L2 {weight_decay}, "
                          "class-balanced; balanced accuracy"}


def confidence_shares(evaluator, outputs: torch.Tensor) -> dict:
    """The evaluator's "no object" share, and the share without a confident class (max softmax
    below LOW_CONFIDENCE); None where the evaluator has no classes (an embedder)."""
    if not getattr(evaluator, "has_classes", False):
        return {"no_object_share": None, "low_confidence_share": None, "mean_max_probability": None}
    probabilities = torch.softmax(evaluator.logits(outputs), dim=1)
    top, predicted = probabilities.max(dim=1)
    names = list(evaluator.class_names)
    no_object = float((predicted == names.index(NO_OBJECT)).double().mean()) if NO_OBJECT in names else None
    return {"no_object_share": None if no_object is None else round(no_object, 4),
            "low_confidence_share": round(float((top < LOW_CONFIDENCE).double().mean()), 4),
            "mean_max_probability": round(float(top.mean()), 4)}


def tell_audit(evaluator, outputs: dict[str, torch.Tensor], *, reference: str | None, forget_indices: list[int],
               folds: int = 5, seed: int = 0) -> dict:
    """Per model: what the evaluator says about its forget outputs, and the probe against the reference's."""
    from i2i_unlearn.evaluation import metrics
    features = {name: evaluator.features(images) for name, images in outputs.items()}
    result = {}
    for name, images in outputs.items():
        entry = {**confidence_shares(evaluator, images),
                 "forget_recognition": metrics.recognition_rate(evaluator, images, forget_indices),
                 "probe_vs_reference": None}
        if reference is not None and name != reference:
            entry["probe_vs_reference"] = linear_probe(features[name], features[reference], folds=folds, seed=seed,
                                                       paired=True)
        result[name] = entry
    return result


# --- figures ------------------------------------------------------------------------------------

def _save_figure(figure, path: Path) -> None:
    import matplotlib.pyplot as plt
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(figure)


def roc_plot(membership: dict, path: str | Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = membership["models"]
    kinds = ["attack"] + (["calibrated"] if any(m["calibrated"] for m in models.values()) else [])
    figure, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 4.6), squeeze=False)
    for axis, kind in zip(axes[0], kinds):
        for name, entry in models.items():
            if entry[kind]:
                axis.plot(entry[kind]["roc"]["fpr"], entry[kind]["roc"]["tpr"],
                          label=f"{name} (AUC {entry[kind]['auc']:.3f})")
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        axis.set(xlabel="false positive rate (never-seen called member)",
                 ylabel="true positive rate (forgotten called member)",
                 title="restoration-error attack" + (" calibrated by the reference" if kind == "calibrated" else ""))
        axis.legend(fontsize=8, loc="lower right")
    path = Path(path)
    _save_figure(figure, path)
    return path


def relearn_plot(relearning: dict, path: str | Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    variants = list(next(iter(relearning["models"].values()))["variants"])
    figure, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants), 4.2), squeeze=False, sharey=True)
    for axis, variant in zip(axes[0], variants):
        for name, entry in relearning["models"].items():
            curve = entry["variants"][variant]["curve"]
            axis.plot([p["step"] for p in curve], [p["recognition"] for p in curve], marker="o", label=name)
        if relearning.get("half_original_recognition") is not None:
            axis.axhline(relearning["half_original_recognition"], color="grey", linestyle=":", linewidth=1,
                         label="half the original's")
        if relearning.get("original_return_level") is not None:
            axis.axhline(relearning["original_return_level"], color="black", linestyle="--", linewidth=1,
                         label="back to the original's")
        axis.set(xlabel="fine-tuning steps on forget-class training images", ylabel="forget-class recognition",
                 title=f"relearning: {variant}")
        axis.legend(fontsize=8)
    path = Path(path)
    _save_figure(figure, path)
    return path


# --- the command --------------------------------------------------------------------------------

@dataclass
class AuditOptions:
    split: str = "test"
    max_images: int | None = 200          # members and non-members each (sampled, seeded)
    task: TaskConfig = field(default_factory=lambda: TaskConfig("center-inpaint", 0.5))  # tell, grid, relearning
    masks: list[TaskConfig] = field(default_factory=lambda: list(DEFAULT_MASKS))
    timesteps: tuple[int, ...] = DEFAULT_TIMESTEPS
    probe_folds: int = 5
    seed: int = 0


def _load_models(model_dirs: dict[str, str | Path]) -> dict[str, I2IModel]:
    from i2i_unlearn.models import load_model
    return {name: load_model(directory) for name, directory in model_dirs.items()}


def run_audit(model_dirs: dict[str, str | Path], out_dir: str | Path, *, evaluator_spec: str | Path,
              reference: str | None = None, tell_reference: str | None = None,
              forget_classes: list[str] | None = None, forget_files: str | Path | None = None,
              options: AuditOptions | None = None, relearn=None, overwrite: bool = False, progress=print) -> dict:
    """The whole audit of `model_dirs` (name -> folder; the first one's training data defines the
    sets). `reference` names one of them: it calibrates the attack (the retrained model, or the
    original, so that the retrained model gets a calibrated score too). `tell_reference` (default:
    `reference`) is what the probe compares each model's forget outputs with: the retrained model;
    relearning paces are given relative to it too. `relearn` (a relearn.RelearnConfig) adds the
    relearning attack. Every input is checked before anything is written; no input folder is written to."""
    from i2i_unlearn.evaluation import metrics
    from i2i_unlearn.evaluation.embedders import load_embedder
    from i2i_unlearn.evaluation.generation import generate_outputs
    from i2i_unlearn.evaluation.grids import image_grid, show_input
    from i2i_unlearn.runs import prepare_output_dir
    from i2i_unlearn.unlearn import input_folders, training_data_config

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
    # 2. the tell, on the inputs `evaluate` scores as forget: never-seen images of the forget
    # classes, or for a file list the forgotten images themselves
    tell_images = sets.non_members if sets.kind == "classes" else sets.members
    outputs, masks = {}, None
    for name, model in models.items():
        outputs[name], masks = generate_outputs(model, tell_images.images, options.task, options.seed,
                                                description=f"the tell: {name}'s forget outputs")
    if progress:
        progress("forget outputs generated")
    tell = tell_audit(evaluator, outputs, reference=tell_reference, forget_indices=forget_indices,
                      folds=options.probe_folds, seed=options.seed)
    for name in models:
        tell[name]["forget_fid"] = metrics.fid(evaluator, outputs[name], tell_images.images) \
            if len(tell_images) >= 2 else None
    shown = torch.linspace(0, len(tell_images) - 1, min(8, len(tell_images))).round().long()
    image_grid([("input", show_input(tell_images.images[shown], masks[shown])),
                *((name, images[shown]) for name, images in outputs.items()),
                ("ground truth", tell_images.images[shown])], out_dir / "grid_forget.png")
    figures = {"grid_forget": "grid_forget.png", "roc": roc_plot(membership, out_dir / "roc.png").name}
    # 3. relearning
    relearning = None
    if relearn is not None and relearn.steps > 0:
        from i2i_unlearn.relearn import relearning_attack
        relearn_images = _sample(sets.members, relearn.images, options.seed + 2)
        if len(relearn_images) < relearn.images:
            raise UserError(f"only {len(relearn_images)} forget training images for --relearn-images "
                            f"{relearn.images}")
        relearning = relearning_attack(models, relearn_images, sets.non_members, evaluator, forget_indices,
                                       relearn, task=options.task, reference=tell_reference, progress=progress)
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
        "tell": {"task": to_dict(options.task), "inputs": "non-members (never-seen forget-class images)"
                 if sets.kind == "classes" else "members (the forgotten images)", "count": len(tell_images),
                 "low_confidence_threshold": LOW_CONFIDENCE, "probe_reference": tell_reference, "models": tell},
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
    if result.get("relearning"):
        lines.append("relearning: steps to half the original's recognition "
                     f"({result['relearning'].get('half_original_recognition')}) / back to the original's "
                     f"({result['relearning'].get('original_return_level')}); None: not within the budget")
        for name, entry in result["relearning"]["models"].items():
            parts = [f"{variant}: {v['steps_to_half_original']} / {v.get('steps_to_original')}"
                     for variant, v in entry["variants"].items()]
            lines.append(f"  {name}: " + ", ".join(parts))
    return lines
