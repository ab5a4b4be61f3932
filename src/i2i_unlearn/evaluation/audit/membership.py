"""Membership inference: each image scored by how well a model restores it (the family's own loss on the hidden
region, several masks, fixed randomness), plain or calibrated by a reference model; AUC and TPR at low FPR."""
from __future__ import annotations

import torch

from i2i_unlearn.config import TaskConfig
from i2i_unlearn.data import ImageSource
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.audit.sets import AuditSets
from i2i_unlearn.models import I2IModel
from i2i_unlearn.models.generation import PROGRESS_DELAY_S
from i2i_unlearn.tasks import check_task, make_mask

DEFAULT_MASKS = [TaskConfig("center-inpaint", 0.25), TaskConfig("center-inpaint", 0.5),
                 TaskConfig("center-inpaint", 0.75), TaskConfig("outpaint", 0.5), TaskConfig("random-patches", 0.5)]

DEFAULT_TIMESTEPS = (100, 250, 500)   # diffusion: denoising error at these training timesteps

FPR_LEVELS = (0.01, 0.05)

ROC_POINTS = 201                      # at most this many points of each ROC curve in audit.json

EPS = 1e-12


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
def restoration_errors(model: I2IModel, images: ImageSource, conds: list[tuple], seed: int = 0,
                       stream: int = 0, description: str = "membership attack") -> torch.Tensor:
    """(N, K) per-image loss of the family on the hidden region under each of K conditions, the images read in
    batches. The mask and the randomness of image i under condition k depend on (seed, stream, i, k) only, so
    every model sees the same inputs."""
    from tqdm.auto import tqdm

    model.eval()
    errors = torch.empty(len(images), len(conds))
    with tqdm(total=len(images), desc=description, unit="image", delay=PROGRESS_DELAY_S, leave=False,
              dynamic_ncols=True) as bar:
        for batch in images.batches(64):
            for i, x in zip(batch.index.tolist(), batch.images.split(1)):
                for k, (task, timestep) in enumerate(conds):
                    generator = torch.Generator().manual_seed(((seed * 1_000_003 + stream) * 100_003 + i) * 101 + k)
                    mask = make_mask(task, 1, x.shape[-1], model.mask_grid, generator)
                    ctx = model.sample_context(x, mask, generator)
                    if timestep is not None:
                        ctx["timesteps"] = torch.full_like(ctx["timesteps"], timestep)
                    errors[i, k] = float(model.training_loss(x, mask, ctx))
                bar.update(1)
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
        errors[name] = (restoration_errors(model, sets.members, conds, seed, stream=0,
                                           description=f"membership attack on {name}: members"),
                        restoration_errors(model, sets.non_members, conds, seed, stream=1,
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
