"""Every score of one model's outputs on one held-out set: the whole image (torchmetrics), the hidden region
alone, each class alone, and bootstrap intervals over the test images."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F

from i2i_unlearn.evaluation import metrics

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

@dataclass
class Seen:
    """What the evaluator sees in a set of images, a row per image: its features (float32, as it computes them)
    and its logits (None: an evaluator without classes)."""
    features: torch.Tensor
    logits: torch.Tensor | None

    @classmethod
    def of(cls, evaluator, images: torch.Tensor) -> "Seen":
        features = evaluator.features(images)
        head = getattr(getattr(evaluator, "net", None), "head", None)   # the classifier: logits from its features
        with torch.no_grad():
            logits = head(features) if head is not None else evaluator.logits(images) if evaluator.has_classes else None
        return cls(features, logits)

    @property
    def predicted(self) -> torch.Tensor | None:
        return self.logits.argmax(dim=1) if self.logits is not None else None

    def recognised(self, class_indices: list[int]) -> torch.Tensor | None:
        """Per image: 1 if predicted as one of `class_indices`."""
        if self.logits is None or not class_indices:
            return None
        return torch.isin(self.predicted, torch.tensor(class_indices)).double()

    @cached_property
    def embeddings(self) -> torch.Tensor:
        return F.normalize(self.features.double(), dim=1)


@dataclass
class Collected:
    """One set of images (a model's outputs, a reference fill or the ground truth) as every score needs it, a row
    per image and no pixels: seen whole and hidden region alone (hole_view), the hidden region's squared error to
    the ground truth, and for model outputs the features of the outputs for noise inputs (noise KL)."""
    whole: Seen
    hole: Seen
    hidden_error: torch.Tensor     # (N,) summed over the hidden pixels and the channels
    hidden_count: torch.Tensor     # (N,) hidden pixels x channels
    noise_features: torch.Tensor | None = None

    @classmethod
    def of(cls, evaluator, images: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor,
           noise_outputs: torch.Tensor | None = None) -> "Collected":
        hole = hole_view(images, masks, evaluator_input_size(evaluator, truth))
        return cls(Seen.of(evaluator, images), Seen.of(evaluator, hole),
                   ((images - truth) ** 2 * masks).flatten(1).sum(1), masks.flatten(1).sum(1) * images.shape[1],
                   evaluator.features(noise_outputs) if noise_outputs is not None else None)

    @classmethod
    def cat(cls, parts: list["Collected"]) -> "Collected":
        """The rows of consecutive batches as one set."""
        def joined(rows):
            return None if rows[0] is None else torch.cat(rows)

        def seen(key):
            return Seen(*(joined([getattr(getattr(p, key), field) for p in parts]) for field in ("features", "logits")))
        return cls(seen("whole"), seen("hole"), *(joined([getattr(p, key) for p in parts])
                                                   for key in ("hidden_error", "hidden_count", "noise_features")))

    def hidden_mse(self) -> float:
        """The set's mean squared error over the hidden pixels (generation.hidden_mse of the whole set)."""
        return float(self.hidden_error.double().sum() / self.hidden_count.double().sum())

def _fid_or_none(generated: torch.Tensor, real: torch.Tensor) -> float | None:
    return float(metrics.fid_from_features(generated, real)) if len(generated) >= 2 else None

def _mean_or_none(values: torch.Tensor | None) -> float | None:
    return None if values is None or len(values) == 0 else float(values.mean())

def _rounded(values: torch.Tensor) -> list[float]:
    return [float(f"{v:.{REPLICATE_DIGITS}g}") for v in values.tolist()]

def _intervals(estimates: dict, replicates: dict) -> dict:
    return {key: metrics.bootstrap_interval(estimates.get(key), values) for key, values in replicates.items()}

def _whole_scores(generated: Collected, truth: Collected, forget_indices: list[int]) -> dict:
    """The whole image's scores, each computed as torchmetrics and metrics.py compute it from the images."""
    out, real = generated.whole, truth.whole
    kid_mean, kid_std = metrics.kid_of_features(out.features, real.features)
    noise_kl = None
    if generated.noise_features is not None:
        noise_kl = metrics.gaussian_kl(out.features, generated.noise_features, NOISE_KL_SHRINK)
    # the global generator's draws follow this order (KID's subsets, then IS's permutation), as they always did
    return {"fid": metrics.fid_of_features(out.features, real.features), "kid_mean": kid_mean, "kid_std": kid_std,
            "is": metrics.inception_score_of_logits(out.logits),
            "similarity": metrics.similarity_of_features(out.features, real.features),
            "recognition": metrics.predicted_share(out.predicted, forget_indices),
            "noise_kl": noise_kl, "hidden_mse": generated.hidden_mse()}

def score_set(generated: Collected, truth: Collected, labels: torch.Tensor, class_names: list[str],
              forget_indices: list[int], evaluator_classes: list[str], *, bootstrap: int = BOOTSTRAP_RESAMPLES,
              seed: int = 0, per_class: bool = True) -> dict:
    """Every score of one model on one held-out set: the whole image, the hidden region alone, each class alone,
    and bootstrap intervals of each over the test images. `truth` is the ground truth collected under the same
    masks; `evaluator_classes` the evaluator's class names (empty: an embedder)."""
    whole = _whole_scores(generated, truth, forget_indices)
    seen = {"whole": (generated.whole, truth.whole), "hole": (generated.hole, truth.hole)}
    hole_out, hole_real = seen["hole"]
    hole = {"fid": metrics.fid_of_features(hole_out.features, hole_real.features),
            "similarity": _mean_or_none((hole_out.embeddings * hole_real.embeddings).sum(dim=1)),
            "recognition": _mean_or_none(hole_out.recognised(forget_indices))}
    result = {"whole": whole, "hole": hole, "intervals": None, "replicates": None, "per_class": None}
    noise_features = generated.noise_features.double() if generated.noise_features is not None else None
    if bootstrap >= 2 and len(labels) >= 2:
        intervals, kept = {}, {}
        for view, (out, real) in seen.items():
            per_image = {"similarity": (out.embeddings * real.embeddings).sum(dim=1),
                         "recognition": out.recognised(forget_indices)}
            if view == "whole":
                per_image["hidden_mse"] = (generated.hidden_error / generated.hidden_count).double()
            replicates = metrics.bootstrap_scores(
                len(labels), bootstrap, seed, generated_features=out.features.double(), real_features=real.features.double(),
                per_image=per_image, logits=out.logits.double() if view == "whole" and out.logits is not None
                else None, noise_features=noise_features if view == "whole" else None, noise_shrink=NOISE_KL_SHRINK)
            intervals[view] = _intervals(whole if view == "whole" else hole,
                                         {k: v for k, v in replicates.items()
                                          if k in (WHOLE_BOOTSTRAPPED if view == "whole" else HOLE_SCORES)})
            kept[view] = {key: _rounded(replicates[key]) for key in KEPT_REPLICATES[view] if key in replicates}
        result["intervals"], result["replicates"] = intervals, kept
    if per_class:
        result["per_class"] = _per_class(evaluator_classes, seen, labels, class_names, bootstrap, seed)
    return result

def _per_class(evaluator_classes: list[str], seen: dict, labels: torch.Tensor, class_names: list[str],
               bootstrap: int, seed: int) -> dict:
    """Per class of the set: FID, similarity and the evaluator's recognition of that very class, whole
    image and hidden region, each with its bootstrap interval (resampled within the class)."""
    out = {}
    for label in sorted(set(labels.tolist())):
        name = class_names[label]
        members = torch.nonzero(labels == label).flatten()
        own = [evaluator_classes.index(name)] if name in evaluator_classes else []
        entry = {"count": len(members)}
        intervals = {}
        for view, (generated, real) in seen.items():
            features_g, features_r = generated.features[members].double(), real.features[members].double()
            similarity = (generated.embeddings[members] * real.embeddings[members]).sum(dim=1)
            recognised = generated.recognised(own)
            recognised = recognised[members] if recognised is not None else None
            scores = {"fid": _fid_or_none(features_g, features_r), "similarity": _mean_or_none(similarity),
                      "recognition": _mean_or_none(recognised)}
            entry[view] = scores
            if bootstrap >= 2 and len(members) >= 2:
                replicates = metrics.bootstrap_scores(len(members), bootstrap, seed + 1 + label,
                                                      generated_features=features_g, real_features=features_r,
                                                      per_image={"similarity": similarity, "recognition": recognised})
                intervals[view] = _intervals(scores, replicates)
        entry["intervals"] = intervals or None
        out[name] = entry
    return out
