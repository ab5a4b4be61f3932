"""Every score of one model's outputs on one held-out set: the whole image (torchmetrics), the hidden region
alone, each class alone, and bootstrap intervals over the test images."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from i2i_unlearn.evaluation import metrics
from i2i_unlearn.models.generation import hidden_mse

NOISE_KL_SHRINK = 0.1  # ReLU features have near-dead dimensions: shrink hard, the same for every model

BOOTSTRAP_RESAMPLES = 200  # the standard error of a score to about 5 % (1 / sqrt(2 x 200))

HOLE_VISIBLE_FILL = 0.0    # visible pixels inside the hole's bounding box (outpainting), the same in outputs and truth

HOLE_SCORES = ("fid", "similarity", "recognition")

WHOLE_BOOTSTRAPPED = ("fid", "is", "similarity", "recognition", "noise_kl", "hidden_mse")

# the bootstrap replicates kept beside the intervals: what paired comparisons of two rows need (the same resamples)
KEPT_REPLICATES = {"whole": ("fid", "similarity", "recognition"), "hole": ("fid", "recognition")}
REPLICATE_DIGITS = 6   # significant digits kept: far below the spread of any replicate

HOLE_VIEW_DOC = ("each image cropped to the bounding box of its hidden pixels (visible pixels inside the box set to "
                 f"{HOLE_VISIBLE_FILL:g} in outputs and ground truth alike), resized (bilinear, antialiased) to the "
                 "evaluator's input size")

BOOTSTRAP_DOC = ("resampling the test images with replacement (outputs and their ground truths together, the same "
                 "resamples for every model); interval = estimate ± 1.96 x the standard deviation of the replicates; "
                 "FID, IS and noise KL recomputed from features extracted once")

def _scores(evaluator, outputs, truth, masks, forget_indices, noise_outputs=None) -> dict:
    kid_mean, kid_std = metrics.kid(evaluator, outputs, truth)
    noise_kl = None
    if noise_outputs is not None:
        noise_kl = metrics.gaussian_kl(evaluator.features(outputs), evaluator.features(noise_outputs), NOISE_KL_SHRINK)
    return {"fid": metrics.fid(evaluator, outputs, truth), "kid_mean": kid_mean, "kid_std": kid_std,
            "is": metrics.inception_score(evaluator, outputs), "similarity": metrics.similarity(evaluator, outputs, truth),
            "recognition": metrics.recognition_rate(evaluator, outputs, forget_indices),
            "noise_kl": noise_kl, "hidden_mse": hidden_mse(outputs, truth, masks)}

def evaluator_input_size(evaluator, images: torch.Tensor) -> int:
    """The image side the evaluator was trained on (a classifier records it), else the images' own."""
    return int((getattr(evaluator, "info", None) or {}).get("image_size") or images.shape[-1])

def hole_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(B, 4) top, bottom, left, right (exclusive) of each mask's hidden pixels; the whole image if none."""
    rows, cols = masks.amax(dim=(1, 3)) > 0, masks.amax(dim=(1, 2)) > 0   # (B, H), (B, W)
    height, width = rows.shape[1], cols.shape[1]

    def span(hit, size):
        any_hit = hit.any(dim=1)
        first = torch.where(any_hit, hit.float().argmax(dim=1), torch.zeros_like(any_hit, dtype=torch.long))
        last = torch.where(any_hit, size - hit.flip(1).float().argmax(dim=1), torch.full_like(first, size))
        return first, last
    top, bottom = span(rows, height)
    left, right = span(cols, width)
    return torch.stack([top, bottom, left, right], dim=1)

def hole_view(images: torch.Tensor, masks: torch.Tensor, size: int) -> torch.Tensor:
    """The hidden region alone (HOLE_VIEW_DOC): (B, C, size, size)."""
    boxes = hole_boxes(masks)
    view = torch.empty(len(images), images.shape[1], size, size, dtype=images.dtype)
    for box in boxes.unique(dim=0):   # one crop per distinct box (a centre hole: one for the whole set)
        members = torch.nonzero((boxes == box).all(dim=1)).flatten()
        top, bottom, left, right = box.tolist()
        crop = images[members][..., top:bottom, left:right]
        hidden = masks[members][..., top:bottom, left:right]
        crop = crop * hidden + HOLE_VISIBLE_FILL * (1 - hidden)
        if crop.shape[-2:] != (size, size):
            crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        view[members] = crop
    return view

class _Seen:
    """What the evaluator sees in one set of images, computed once: features, embeddings, logits."""

    def __init__(self, evaluator, images: torch.Tensor):
        features = evaluator.features(images)
        self.features = features.double()
        self.embeddings = F.normalize(self.features, dim=1)
        head = getattr(getattr(evaluator, "net", None), "head", None)   # the classifier: logits from its features
        with torch.no_grad():
            logits = head(features) if head is not None else evaluator.logits(images) if evaluator.has_classes else None
        self.logits = logits.double() if logits is not None else None
        self.predicted = self.logits.argmax(dim=1) if self.logits is not None else None

    def recognised(self, class_indices: list[int]) -> torch.Tensor | None:
        """Per image: 1 if predicted as one of `class_indices`."""
        if self.predicted is None or not class_indices:
            return None
        return torch.isin(self.predicted, torch.tensor(class_indices)).double()

def _fid_or_none(generated: torch.Tensor, real: torch.Tensor) -> float | None:
    return float(metrics.fid_from_features(generated, real)) if len(generated) >= 2 else None

def _mean_or_none(values: torch.Tensor | None) -> float | None:
    return None if values is None or len(values) == 0 else float(values.mean())

def _rounded(values: torch.Tensor) -> list[float]:
    return [float(f"{v:.{REPLICATE_DIGITS}g}") for v in values.tolist()]

def _intervals(estimates: dict, replicates: dict) -> dict:
    return {key: metrics.bootstrap_interval(estimates.get(key), values) for key, values in replicates.items()}

def score_set(evaluator, outputs: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor,
              class_names: list[str], forget_indices: list[int], noise_outputs: torch.Tensor | None = None, *,
              bootstrap: int = BOOTSTRAP_RESAMPLES, seed: int = 0, per_class: bool = True) -> dict:
    """Every score of one model on one held-out set: the whole image (`_scores`: torchmetrics), the hidden
    region alone, each class alone, and bootstrap intervals of each over the test images."""
    whole = _scores(evaluator, outputs, truth, masks, forget_indices, noise_outputs)
    size = evaluator_input_size(evaluator, truth)
    hole_outputs, hole_truth = hole_view(outputs, masks, size), hole_view(truth, masks, size)
    seen = {"whole": (_Seen(evaluator, outputs), _Seen(evaluator, truth)),
            "hole": (_Seen(evaluator, hole_outputs), _Seen(evaluator, hole_truth))}
    hole_out, hole_real = seen["hole"]
    hole = {"fid": metrics.fid(evaluator, hole_outputs, hole_truth),
            "similarity": _mean_or_none((hole_out.embeddings * hole_real.embeddings).sum(dim=1)),
            "recognition": _mean_or_none(hole_out.recognised(forget_indices))}
    result = {"whole": whole, "hole": hole, "intervals": None, "replicates": None, "per_class": None}
    noise_features = evaluator.features(noise_outputs).double() if noise_outputs is not None else None
    if bootstrap >= 2 and len(truth) >= 2:
        indices = metrics.bootstrap_indices(len(truth), bootstrap, seed)
        intervals, kept = {}, {}
        for view, (out, real) in seen.items():
            per_image = {"similarity": (out.embeddings * real.embeddings).sum(dim=1),
                         "recognition": out.recognised(forget_indices)}
            if view == "whole":
                per_image["hidden_mse"] = (((outputs - truth) ** 2 * masks).flatten(1).sum(1)
                                           / (masks.flatten(1).sum(1) * outputs.shape[1])).double()
            replicates = metrics.bootstrap_scores(
                indices, generated_features=out.features, real_features=real.features, per_image=per_image,
                logits=out.logits if view == "whole" else None,
                noise_features=noise_features if view == "whole" else None, noise_shrink=NOISE_KL_SHRINK)
            intervals[view] = _intervals(whole if view == "whole" else hole,
                                         {k: v for k, v in replicates.items()
                                          if k in (WHOLE_BOOTSTRAPPED if view == "whole" else HOLE_SCORES)})
            kept[view] = {key: _rounded(replicates[key]) for key in KEPT_REPLICATES[view] if key in replicates}
        result["intervals"], result["replicates"] = intervals, kept
    if per_class:
        result["per_class"] = _per_class(evaluator, seen, labels, class_names, bootstrap, seed)
    return result

def _per_class(evaluator, seen: dict, labels: torch.Tensor, class_names: list[str], bootstrap: int,
               seed: int) -> dict:
    """Per class of the set: FID, similarity and the evaluator's recognition of that very class, whole
    image and hidden region, each with its bootstrap interval (resampled within the class)."""
    evaluator_classes = evaluator.class_names if evaluator.has_classes else []
    out = {}
    for label in sorted(set(labels.tolist())):
        name = class_names[label]
        members = torch.nonzero(labels == label).flatten()
        own = [evaluator_classes.index(name)] if name in evaluator_classes else []
        entry = {"count": len(members)}
        intervals = {}
        for view, (generated, real) in seen.items():
            features_g, features_r = generated.features[members], real.features[members]
            similarity = (generated.embeddings[members] * real.embeddings[members]).sum(dim=1)
            recognised = generated.recognised(own)
            recognised = recognised[members] if recognised is not None else None
            scores = {"fid": _fid_or_none(features_g, features_r), "similarity": _mean_or_none(similarity),
                      "recognition": _mean_or_none(recognised)}
            entry[view] = scores
            if bootstrap >= 2 and len(members) >= 2:
                indices = metrics.bootstrap_indices(len(members), bootstrap, seed + 1 + label)
                replicates = metrics.bootstrap_scores(indices, generated_features=features_g, real_features=features_r,
                                                      per_image={"similarity": similarity, "recognition": recognised})
                intervals[view] = _intervals(scores, replicates)
        entry["intervals"] = intervals or None
        out[name] = entry
    return out
