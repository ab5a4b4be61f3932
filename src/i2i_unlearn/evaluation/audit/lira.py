"""Per-example likelihood-ratio membership inference (LiRA, Carlini et al. 2022; its unlearning form U-LiRA,
Hayes et al. 2024): is an audited model, image by image, more like the models trained WITH the forget images or
like those trained WITHOUT them?

For each forget image i and each condition k (a mask, and a timestep for diffusion) a model's score is how well it
restores the image, s = -log(restoration error) (membership.restoration_errors). Shadow models of both kinds give,
per image and condition, a Gaussian of the scores of models that saw the image (IN: the original recipe) and of
models that did not (OUT: retrained without it). An audited model's evidence for "saw it" on image i is the log
likelihood ratio summed over the conditions,

    Lambda_i = sum_k log N(s_ik; mu_in_ik, sd_in_k) - log N(s_ik; mu_out_ik, sd_out_k),

with one standard deviation per condition pooled over the images ("fixed variance", the variant Carlini et al.
recommend with few shadows; per-image variances from four models are noise).

The null: what Lambda looks like for a model that truly never saw the images. Each OUT shadow is scored by
Gaussians fitted without it (leave one out), so the null holds only honest out-of-fit values. An audited model is
then told from the null like any binary test: AUC, and TPR at low FPR with the threshold at the null's (1 - FPR)
quantile. The original (a model that saw the images, kept out of the fit) must be caught: that shows the attack
has power; a retrained seed kept out of the fit is the ideal an unlearned model should match. Every number gets a
bootstrap interval over the images (the same resampled images for every model).
"""
from __future__ import annotations

import math

import torch

from i2i_unlearn.errors import UserError

FPR_LEVELS = (0.01, 0.001)
MIN_SHADOWS = 2        # per kind: a mean and a spread need two
EPS = 1e-12


def restoration_scores(errors: torch.Tensor) -> torch.Tensor:
    """Scores from restoration errors (..., N, K): higher = restored better = more likely seen."""
    return -torch.log(errors.double() + EPS)


def fit_gaussians(in_scores: torch.Tensor, out_scores: torch.Tensor) -> dict:
    """Per image and condition means of the IN and OUT shadow scores (M, N, K each), and one standard deviation
    per condition and kind, pooled over images (the deviations from each image's own mean)."""
    for name, scores in (("IN", in_scores), ("OUT", out_scores)):
        if scores.dim() != 3 or len(scores) < MIN_SHADOWS:
            raise UserError(f"LiRA needs at least {MIN_SHADOWS} {name} shadow models' scores shaped (models, images, "
                            f"conditions), got {tuple(scores.shape)}")
    if in_scores.shape[1:] != out_scores.shape[1:]:
        raise UserError(f"IN and OUT shadows scored different images or conditions: {tuple(in_scores.shape[1:])} "
                        f"vs {tuple(out_scores.shape[1:])}")

    def moments(scores):
        scores = scores.double()
        mean = scores.mean(dim=0)                                              # (N, K)
        pooled = ((scores - mean) ** 2).sum(dim=(0, 1)) / (scores.shape[1] * (scores.shape[0] - 1))
        return mean, pooled.sqrt().clamp(min=1e-6)                             # (K,)
    mu_in, sd_in = moments(in_scores)
    mu_out, sd_out = moments(out_scores)
    return {"mu_in": mu_in, "sd_in": sd_in, "mu_out": mu_out, "sd_out": sd_out}


def _log_normal(x: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((x - mu) / sd) ** 2 - torch.log(sd) - 0.5 * math.log(2 * math.pi)


def likelihood_ratio(scores: torch.Tensor, fit: dict) -> torch.Tensor:
    """Lambda per image (N,) for one model's scores (N, K): higher = more like the models that saw the image."""
    scores = scores.double()
    return (_log_normal(scores, fit["mu_in"], fit["sd_in"])
            - _log_normal(scores, fit["mu_out"], fit["sd_out"])).sum(dim=-1)


def leave_one_out_null(in_scores: torch.Tensor, out_scores: torch.Tensor) -> torch.Tensor:
    """Lambda of each OUT shadow under Gaussians fitted without it: (M_out, N), the values a model that never saw
    the images honestly gets (a shadow scored by a fit that includes it would look too typical)."""
    if len(out_scores) < MIN_SHADOWS + 1:
        raise UserError(f"the null leaves one OUT shadow out of the fit: it needs at least {MIN_SHADOWS + 1} OUT "
                        f"shadows, got {len(out_scores)}")
    rows = []
    for held in range(len(out_scores)):
        rest = torch.cat([out_scores[:held], out_scores[held + 1:]])
        rows.append(likelihood_ratio(out_scores[held], fit_gaussians(in_scores, rest)))
    return torch.stack(rows)


def _auc(positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """P(positive > negative) + P(tie)/2, batched over leading dims: (..., P) and (..., Q) -> (...)."""
    greater = (positives.unsqueeze(-1) > negatives.unsqueeze(-2)).double()
    ties = (positives.unsqueeze(-1) == negatives.unsqueeze(-2)).double()
    return (greater + 0.5 * ties).mean(dim=(-1, -2))


def _tpr_at(positives: torch.Tensor, negatives: torch.Tensor, fpr: float) -> torch.Tensor:
    """Share of positives above the threshold that lets at most `fpr` of the negatives through: (..., P), (..., Q)."""
    ordered = negatives.sort(dim=-1, descending=True).values
    allowed = int(math.floor(fpr * negatives.shape[-1]))   # negatives that may lie above the threshold
    threshold = ordered[..., allowed] if allowed < negatives.shape[-1] else ordered[..., -1] - 1
    return (positives > threshold.unsqueeze(-1)).double().mean(dim=-1)


def roc_points(positives: torch.Tensor, negatives: torch.Tensor, points: int = 101) -> dict:
    """The ROC curve at `points` thresholds (quantiles of both sets, plus one above everything): what the report
    draws on log axes, where the low-FPR end the attack is judged by shows."""
    both = torch.cat([positives.flatten(), negatives.flatten()]).double()
    thresholds = torch.cat([both.max().reshape(1) + 1, torch.quantile(both, torch.linspace(1, 0, points,
                                                                                             dtype=torch.float64))])
    return {"fpr": [round(float((negatives >= t).double().mean()), 5) for t in thresholds],
            "tpr": [round(float((positives >= t).double().mean()), 5) for t in thresholds]}


def attack_summary(audited: torch.Tensor, null: torch.Tensor, *, fpr_levels=FPR_LEVELS, bootstrap: int = 1000,
                   seed: int = 0, level: float = 0.95) -> dict:
    """The audited model's Lambda (N,) against the null (M_out, N): AUC and TPR at each FPR level, each with a
    bootstrap interval over the images (the null's images resampled with the audited model's, so a fixed seed
    gives every model the same resamples)."""
    n = audited.shape[-1]
    if null.shape[-1] != n:
        raise UserError("the audited model and the null must score the same images")
    summary = {"images": n, "null_models": null.shape[0], "auc": float(_auc(audited, null.flatten()))}
    for fpr in fpr_levels:
        summary[f"tpr_at_{fpr:g}_fpr"] = float(_tpr_at(audited, null.flatten(), fpr))
    if bootstrap >= 2:
        generator = torch.Generator().manual_seed(seed)
        idx = torch.randint(0, n, (bootstrap, n), generator=generator)
        positives = audited[idx]                                               # (B, N)
        negatives = null[:, idx].permute(1, 0, 2).reshape(bootstrap, -1)       # (B, M_out * N)
        tail = (1 - level) / 2
        intervals = {"auc": _auc(positives, negatives)}
        for fpr in fpr_levels:
            intervals[f"tpr_at_{fpr:g}_fpr"] = _tpr_at(positives, negatives, fpr)
        summary["intervals"] = {key: [round(float(values.quantile(tail)), 5), round(float(values.quantile(1 - tail)), 5)]
                                for key, values in intervals.items()}
        summary["bootstrap"] = {"resamples": bootstrap, "seed": seed, "level": level, "over": "images"}
    summary["roc"] = roc_points(audited, null)
    return {key: round(value, 5) if isinstance(value, float) else value for key, value in summary.items()}


def lira_audit(audited_scores: dict[str, torch.Tensor], in_scores: torch.Tensor, out_scores: torch.Tensor,
               **summary_options) -> dict:
    """Every audited model (name -> scores (N, K), none of them among the shadows) against the leave-one-out null
    of the OUT shadows, with the Gaussians fitted on all shadows."""
    fit = fit_gaussians(in_scores, out_scores)
    null = leave_one_out_null(in_scores, out_scores)
    return {"shadows": {"in": int(in_scores.shape[0]), "out": int(out_scores.shape[0])},
            "conditions": int(in_scores.shape[-1]),
            "models": {name: attack_summary(likelihood_ratio(scores, fit), null, **summary_options)
                       for name, scores in audited_scores.items()}}
