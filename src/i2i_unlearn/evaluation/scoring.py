"""Every score of one model's outputs on one held-out set: the whole image (torchmetrics), the hidden region
alone, each class alone, and bootstrap intervals over the test images.

A set of any size: its point estimates come from every image (`Streamed`: feature moments, class-probability sums
and a few numbers per image, accumulated batch by batch), while the per-image feature rows (`Collected`: what KID,
the bootstrap intervals and per-class FID need) are kept for at most INTERVAL_IMAGES images, a seeded sample of
positions drawn before the pass (`interval_positions`), the same for every model and the ground truth. A set of at
most INTERVAL_IMAGES images keeps every row and is scored from them alone, as before the sample existed."""
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

# the bootstrap replicates kept beside the intervals: what paired comparisons of two rows need (the same resamples);
# every score a table compares rows on, since a score without them falls back to the unpaired rule
KEPT_REPLICATES = {"whole": ("fid", "similarity", "recognition"), "hole": ("fid", "similarity", "recognition")}
CLASS_REPLICATES = ("fid", "similarity", "recognition")   # per class, whole images: the collateral verdicts
REPLICATE_DIGITS = 6   # significant digits kept: far below the spread of any replicate

HOLE_VIEW_DOC = ("each image cropped to the bounding box of its hidden pixels (visible pixels inside the box set to "
                 f"{HOLE_VISIBLE_FILL:g} in outputs and ground truth alike), resized (bilinear, antialiased) to the "
                 "evaluator's input size")

INTERVAL_IMAGES = 5000    # per-image rows kept per set (KID, intervals, per-class FID): a set above it keeps a sample
INTERVAL_SEED_OFFSET = 3_400_034   # the sample's generator: the evaluation seed plus this

INTERVAL_SAMPLE_DOC = ("a set of more images than the cap keeps the per-image features of a random sample of that "
                       "many (drawn without replacement by a generator seeded `seed`; the same images for every row): KID, per-class FID and every bootstrap interval "
                       "come from the sample (wider than the whole set's: conservative), the other point estimates "
                       "from every image (FID and noise KL from feature means and covariances accumulated batch by "
                       "batch; IS from summed class probabilities; similarity, recognition and hidden MSE per image)")

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

def interval_positions(n: int, cap: int | None, seed: int) -> torch.Tensor | None:
    """The positions of a set of `n` images whose per-image rows a pass keeps: None (every image) when n is at most
    `cap` (None: no cap), else `cap` positions drawn at random without replacement, sorted, from a generator of
    its own (seeded `seed` + INTERVAL_SEED_OFFSET: not the stream the bootstrap's resamples of the same seed come
    from). A pure function of (n, cap, seed): every row of an evaluation (each model, the reference fills, the
    ground truth) keeps the same images, so their bootstrap resamples pair."""
    if cap is None or n <= cap:
        return None
    generator = torch.Generator().manual_seed(seed + INTERVAL_SEED_OFFSET)
    return torch.randperm(n, generator=generator)[:cap].sort().values


@dataclass
class Moments:
    """The sum and the sum of outer products of feature rows (float64), accumulated batch by batch as torchmetrics'
    FrechetInceptionDistance accumulates them: the mean and covariance of a set of any size."""
    count: int
    total: torch.Tensor   # (D,)
    outer: torch.Tensor   # (D, D)

    @classmethod
    def of(cls, features: torch.Tensor) -> "Moments":
        features = features.double()
        return cls(len(features), features.sum(dim=0), features.T @ features)

    def add(self, other: "Moments") -> None:
        self.count += other.count
        self.total += other.total
        self.outer += other.outer

    def mean_covariance(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean and the unbiased covariance (torchmetrics' FID compute)."""
        mean = self.total / self.count
        return mean, (self.outer - self.count * torch.outer(mean, mean)) / (self.count - 1)


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

    def take(self, rows: torch.Tensor) -> "Seen":
        return Seen(self.features[rows], self.logits[rows] if self.logits is not None else None)


def per_image_similarity(generated: Seen, real: Seen) -> torch.Tensor:
    """Each image's cosine similarity to its own ground truth (float64): Seen.embeddings', not cached on the rows."""
    return (F.normalize(generated.features.double(), dim=1) * F.normalize(real.features.double(), dim=1)).sum(dim=1)


PER_IMAGE = ("predicted", "hole_predicted", "similarity", "hole_similarity", "hidden_error", "hidden_count")


class Streamed:
    """What every image of a set leaves, whatever the set's size, accumulated batch by batch (`add`): feature moments
    (whole image, hidden region, outputs for noise inputs), the evaluator's summed class probabilities (IS), and a
    few numbers per image (`column`: its predicted class whole and hidden region, its similarity to its ground
    truth, its hidden squared error and pixel count). The point estimates of a set above INTERVAL_IMAGES come from
    here: a few dozen bytes per image, not its features."""

    def __init__(self):
        self.whole: Moments | None = None
        self.hole: Moments | None = None
        self.noise: Moments | None = None
        self.probability_sum: torch.Tensor | None = None   # (K,) float64: sum over images of softmax(logits)
        self.plogp_sum: torch.Tensor | None = None         # () float64: sum over images of sum_k p log p
        self.count = 0
        self._columns: dict[str, list[torch.Tensor] | torch.Tensor | None] = {key: [] for key in PER_IMAGE}

    def add(self, batch: "Collected", truth: "Collected") -> None:
        """One batch: `batch` collected with `truth`, the ground truth of the same images under the same masks."""
        for key, features in (("whole", batch.whole.features), ("hole", batch.hole.features),
                              ("noise", batch.noise_features)):
            if features is not None:
                if getattr(self, key) is None:
                    setattr(self, key, Moments.of(features))
                else:
                    getattr(self, key).add(Moments.of(features))
        logits = batch.whole.logits
        if logits is not None:
            probabilities = logits.double().softmax(dim=1)
            plogp = (probabilities * logits.double().log_softmax(dim=1)).sum()
            if self.probability_sum is None:
                self.probability_sum, self.plogp_sum = probabilities.sum(dim=0), plogp
            else:
                self.probability_sum, self.plogp_sum = self.probability_sum + probabilities.sum(dim=0), \
                    self.plogp_sum + plogp
        self.count += len(batch.hidden_error)
        for key, values in (("predicted", batch.whole.predicted), ("hole_predicted", batch.hole.predicted),
                            ("similarity", per_image_similarity(batch.whole, truth.whole)),
                            ("hole_similarity", per_image_similarity(batch.hole, truth.hole)),
                            ("hidden_error", batch.hidden_error), ("hidden_count", batch.hidden_count)):
            if values is not None:
                self._columns[key].append(values)

    def column(self, key: str) -> torch.Tensor | None:
        """One number per image of the set, in order (None: the evaluator has no classes, for the predictions)."""
        pieces = self._columns[key]
        if isinstance(pieces, list):
            pieces = self._columns[key] = torch.cat(pieces) if pieces else None
        return pieces

    def recognised(self, view: str, class_indices: list[int]) -> torch.Tensor | None:
        """Per image: 1 if predicted as one of `class_indices` (view: whole or hole)."""
        predicted = self.column("predicted" if view == "whole" else "hole_predicted")
        if predicted is None or not class_indices:
            return None
        return torch.isin(predicted, torch.tensor(class_indices)).double()

    def hidden_mse(self) -> float:
        return float(self.column("hidden_error").double().sum() / self.column("hidden_count").double().sum())


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
    # the rows' positions in the set when they are a sample of it (interval_positions; None: every image, in order)
    positions: torch.Tensor | None = None
    streamed: Streamed | None = None   # every image's (collect.py fills it; the scores use it under a sample)

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

    def take(self, rows: torch.Tensor) -> "Collected":
        """The rows at `rows` (a batch's sampled images)."""
        return Collected(self.whole.take(rows), self.hole.take(rows), self.hidden_error[rows], self.hidden_count[rows],
                         self.noise_features[rows] if self.noise_features is not None else None)

    @property
    def sampled(self) -> bool:
        """The rows are a sample of the set (its point estimates then come from `streamed`)."""
        return self.positions is not None

    def hidden_mse(self) -> float:
        """The set's mean squared error over the hidden pixels (generation.hidden_mse of the whole set)."""
        return float(self.hidden_error.double().sum() / self.hidden_count.double().sum())


def fid_between(generated: Collected, truth: Collected, view: str = "whole") -> float:
    """The FID of a view of two collected sets over every image: from their rows, or from the moments of a set whose
    rows are a sample (`Collected.sampled`)."""
    if not generated.sampled:
        return metrics.fid_of_features(getattr(generated, view).features, getattr(truth, view).features)
    return metrics.fid_of_moments(*getattr(generated.streamed, view).mean_covariance(),
                                  *getattr(truth.streamed, view).mean_covariance())

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

def _streamed_scores(generated: Collected, truth: Collected, forget_indices: list[int]) -> tuple[dict, dict]:
    """The whole image's and the hidden region's scores of a set whose rows are a sample: every point estimate from
    every image (Streamed), KID from the sample's rows."""
    every = generated.streamed
    kid_mean, kid_std = metrics.kid_of_features(generated.whole.features, truth.whole.features)
    noise_kl = None
    if every.noise is not None:
        noise_kl = metrics.gaussian_kl_of_moments(*every.whole.mean_covariance(), *every.noise.mean_covariance(),
                                                  NOISE_KL_SHRINK)
    inception = None
    if every.probability_sum is not None:
        inception = metrics.inception_score_of_sums(every.probability_sum, every.plogp_sum, every.count)
    whole = {"fid": fid_between(generated, truth), "kid_mean": kid_mean, "kid_std": kid_std, "is": inception,
             "similarity": _mean_or_none(every.column("similarity")),
             "recognition": metrics.predicted_share(every.column("predicted"), forget_indices),
             "noise_kl": noise_kl, "hidden_mse": every.hidden_mse()}
    hole = {"fid": fid_between(generated, truth, "hole"), "similarity": _mean_or_none(every.column("hole_similarity")),
            "recognition": _mean_or_none(every.recognised("hole", forget_indices))}
    return whole, hole

def score_set(generated: Collected, truth: Collected, labels: torch.Tensor, class_names: list[str],
              forget_indices: list[int], evaluator_classes: list[str], *, bootstrap: int = BOOTSTRAP_RESAMPLES,
              seed: int = 0, per_class: bool = True) -> dict:
    """Every score of one model on one held-out set: the whole image, the hidden region alone, each class alone,
    and bootstrap intervals of each over the test images. `truth` is the ground truth collected under the same
    masks; `evaluator_classes` the evaluator's class names (empty: an embedder)."""
    if generated.sampled != truth.sampled or (generated.sampled and not torch.equal(generated.positions,
                                                                                   truth.positions)):
        raise ValueError("the outputs' and the ground truth's rows must be of the same images")
    seen = {"whole": (generated.whole, truth.whole), "hole": (generated.hole, truth.hole)}
    if generated.sampled:   # every point estimate from every image; KID, intervals and per-class FID from the rows
        whole, hole = _streamed_scores(generated, truth, forget_indices)
        row_labels = labels[generated.positions]
    else:
        whole = _whole_scores(generated, truth, forget_indices)
        hole_out, hole_real = seen["hole"]
        hole = {"fid": metrics.fid_of_features(hole_out.features, hole_real.features),
                "similarity": _mean_or_none((hole_out.embeddings * hole_real.embeddings).sum(dim=1)),
                "recognition": _mean_or_none(hole_out.recognised(forget_indices))}
        row_labels = labels
    result = {"whole": whole, "hole": hole, "intervals": None, "replicates": None, "per_class": None,
              "images": {"estimates": len(labels), "intervals": len(row_labels)}}
    noise_features = generated.noise_features.double() if generated.noise_features is not None else None
    if bootstrap >= 2 and len(row_labels) >= 2:
        intervals, kept = {}, {}
        for view, (out, real) in seen.items():
            per_image = {"similarity": (out.embeddings * real.embeddings).sum(dim=1),
                         "recognition": out.recognised(forget_indices)}
            if view == "whole":
                per_image["hidden_mse"] = (generated.hidden_error / generated.hidden_count).double()
            replicates = metrics.bootstrap_scores(
                len(row_labels), bootstrap, seed, generated_features=out.features.double(),
                real_features=real.features.double(), per_image=per_image,
                logits=out.logits.double() if view == "whole" and out.logits is not None else None,
                noise_features=noise_features if view == "whole" else None, noise_shrink=NOISE_KL_SHRINK)
            intervals[view] = _intervals(whole if view == "whole" else hole,
                                         {k: v for k, v in replicates.items()
                                          if k in (WHOLE_BOOTSTRAPPED if view == "whole" else HOLE_SCORES)})
            kept[view] = {key: _rounded(replicates[key]) for key in KEPT_REPLICATES[view] if key in replicates}
        result["intervals"], result["replicates"] = intervals, kept
    if per_class:
        every = None
        if generated.sampled:   # a class's similarity and recognition from every image of it, its FID from the rows
            every = (labels, generated.streamed)
        result["per_class"] = _per_class(evaluator_classes, seen, row_labels, class_names, bootstrap, seed, every)
    return result

def _per_class(evaluator_classes: list[str], seen: dict, labels: torch.Tensor, class_names: list[str],
               bootstrap: int, seed: int, every: tuple | None = None) -> dict:
    """Per class of the set: FID, similarity and the evaluator's recognition of that very class, whole
    image and hidden region, each with its bootstrap interval (resampled within the class). `labels`: the rows'.
    `every`: (labels of every image, Streamed) when the rows are a sample: then a class's similarity and recognition
    are of every image of it, its FID and every interval of its sampled rows."""
    out = {}
    for label in sorted(set((every[0] if every else labels).tolist())):
        name = class_names[label]
        members = torch.nonzero(labels == label).flatten()
        own = [evaluator_classes.index(name)] if name in evaluator_classes else []
        entry = {"count": len(members)}
        if every:
            all_members = torch.nonzero(every[0] == label).flatten()
            entry = {"count": len(all_members), "interval_images": len(members)}
        intervals, kept = {}, {}
        for view, (generated, real) in seen.items():
            features_g, features_r = generated.features[members].double(), real.features[members].double()
            similarity = (generated.embeddings[members] * real.embeddings[members]).sum(dim=1)
            recognised = generated.recognised(own)
            recognised = recognised[members] if recognised is not None else None
            scores = {"fid": _fid_or_none(features_g, features_r), "similarity": _mean_or_none(similarity),
                      "recognition": _mean_or_none(recognised)}
            if every:
                streamed = every[1]
                column = streamed.column("similarity" if view == "whole" else "hole_similarity")
                every_recognised = streamed.recognised(view, own)
                scores["similarity"] = _mean_or_none(column[all_members])
                scores["recognition"] = _mean_or_none(every_recognised[all_members]
                                                      if every_recognised is not None else None)
            entry[view] = scores
            if bootstrap >= 2 and len(members) >= 2:
                replicates = metrics.bootstrap_scores(len(members), bootstrap, seed + 1 + label,
                                                      generated_features=features_g, real_features=features_r,
                                                      per_image={"similarity": similarity, "recognition": recognised})
                intervals[view] = _intervals(scores, replicates)
                if view == "whole":   # the collateral table's paired verdicts (every row resamples the class alike)
                    kept[view] = {key: _rounded(replicates[key]) for key in CLASS_REPLICATES if key in replicates}
        entry["intervals"] = intervals or None
        if kept:
            entry["replicates"] = kept
        out[name] = entry
    return out
