"""The numbers of method.md section 4, each a function of generated images, ground truth and an
evaluator (or embedder), or of the evaluator's features and logits of them (`*_of_features`, `*_of_logits`: what
a set too large to hold keeps, a row per image; the same numbers). FID/KID/IS come from torchmetrics."""
from __future__ import annotations

import math
import warnings
from typing import Iterator

import torch
import torch.nn.functional as F
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

# torchmetrics warns that KID/IS keep all features in memory (a few hundred small vectors here)
warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer.*")


def _batches(images, size=256):
    return (images[i:i + size] for i in range(0, len(images), size))


class _Given(torch.nn.Module):
    """torchmetrics' `feature` module for features extracted already: the identity, with their width."""

    def __init__(self, width: int):
        super().__init__()
        self.num_features = width

    def forward(self, features):
        return features


def fid(evaluator, generated: torch.Tensor, real: torch.Tensor) -> float:
    return _fid(evaluator.feature_module(), generated, real)


def fid_of_features(generated: torch.Tensor, real: torch.Tensor) -> float:
    """fid() of the evaluator's features of the images, a row per image: torchmetrics fed the same rows in the same
    batches, so the number is fid()'s (the images themselves need not be held)."""
    return _fid(_Given(real.shape[1]), generated, real)


def _fid(feature: torch.nn.Module, generated: torch.Tensor, real: torch.Tensor) -> float:
    metric = FrechetInceptionDistance(feature=feature, normalize=True)
    for batch in _batches(real):
        metric.update(batch, real=True)
    for batch in _batches(generated):
        metric.update(batch, real=False)
    return float(metric.compute())


def kid(evaluator, generated: torch.Tensor, real: torch.Tensor, seed: int = 0) -> tuple[float, float | None]:
    """KID mean and std over subsets (subset size: the smaller set, at most 100). The std is None when both sets
    are of that size: every subset is then the whole set, and their spread is rounding, not uncertainty."""
    return _kid(evaluator.feature_module(), generated, real, seed)


def kid_of_features(generated: torch.Tensor, real: torch.Tensor, seed: int = 0) -> tuple[float, float | None]:
    """kid() of the evaluator's features of the images (as fid_of_features is fid())."""
    return _kid(_Given(real.shape[1]), generated, real, seed)


def _kid(feature: torch.nn.Module, generated: torch.Tensor, real: torch.Tensor,
         seed: int) -> tuple[float, float | None]:
    torch.manual_seed(seed)  # torchmetrics draws its subsets from the global generator
    size = min(100, len(generated), len(real))
    metric = KernelInceptionDistance(feature=feature, subsets=50, subset_size=size, normalize=True)
    for batch in _batches(real):
        metric.update(batch, real=True)
    for batch in _batches(generated):
        metric.update(batch, real=False)
    with warnings.catch_warnings():  # one subset (set size <= subset size) has no std: torchmetrics warns
        warnings.simplefilter("ignore", UserWarning)
        mean, std = metric.compute()
    return float(mean), None if size == len(generated) == len(real) else float(std)


def inception_score(evaluator, generated: torch.Tensor) -> float | None:
    """IS of the generated set from the evaluator's class probabilities (one split)."""
    if not evaluator.has_classes:
        return None
    return _inception_score(evaluator.logit_module(), generated)


def inception_score_of_logits(logits: torch.Tensor | None) -> float | None:
    """inception_score() of the evaluator's logits of the images, a row per image (None: an evaluator without
    classes)."""
    return None if logits is None else _inception_score(_Given(logits.shape[1]), logits)


def _inception_score(feature: torch.nn.Module, generated: torch.Tensor) -> float:
    metric = InceptionScore(feature=feature, splits=1)  # floats pass through as they are
    for batch in _batches(generated):
        metric.update(batch)
    with warnings.catch_warnings():  # one split has no std: torchmetrics warns
        warnings.simplefilter("ignore", UserWarning)
        return float(metric.compute()[0])


def similarity(evaluator, generated: torch.Tensor, real: torch.Tensor) -> float:
    """CLIP-style: mean cosine similarity of each output's embedding to its own ground truth's."""
    return similarity_of_features(evaluator.features(generated), evaluator.features(real))


def similarity_of_features(generated: torch.Tensor, real: torch.Tensor) -> float:
    """similarity() of the evaluator's features of the images, a row per image (an embedding: the normalised row)."""
    return float((F.normalize(generated, dim=1) * F.normalize(real, dim=1)).sum(dim=1).mean())


def recognition_rate(evaluator, generated: torch.Tensor, class_indices: list[int]) -> float | None:
    """Share of images the evaluator classifies as one of `class_indices` (the forget classes)."""
    if not evaluator.has_classes or not class_indices:
        return None
    return predicted_share(evaluator.predict(generated), class_indices)


def predicted_share(predicted: torch.Tensor | None, class_indices: list[int]) -> float | None:
    """Share of the predicted classes (a row per image) that are one of `class_indices`; None without any."""
    if predicted is None or not class_indices or len(predicted) == 0:
        return None
    # the exact fraction (a float32 mean turns 72/100 into 0.72000003, which then compares wrongly with 0.72)
    return int(torch.isin(predicted, torch.tensor(class_indices)).sum()) / len(predicted)


def gaussian_kl(features_p: torch.Tensor, features_q: torch.Tensor, shrink: float = 1e-2) -> float:
    """KL(N_p || N_q) of Gaussians fitted to two feature sets (method.md section 5).

    Covariances are shrunk toward a scaled identity, since a few hundred samples in tens of
    dimensions give singular estimates; the same shrinkage is used for every model.
    """
    def fit(features):
        features = features.double()
        return features.mean(dim=0), torch.cov(features.T)
    return gaussian_kl_of_moments(*fit(features_p), *fit(features_q), shrink)


def gaussian_kl_of_moments(mean_p: torch.Tensor, cov_p: torch.Tensor, mean_q: torch.Tensor, cov_q: torch.Tensor,
                           shrink: float = 1e-2) -> float:
    """gaussian_kl of two feature sets given by their means and (unbiased) covariances, float64: what a set too
    large to hold keeps (scoring.Moments)."""
    def shrunk(cov):
        dim = cov.shape[0]
        cov = (1 - shrink) * cov + shrink * torch.trace(cov) / dim * torch.eye(dim, dtype=cov.dtype)
        return cov + 1e-6 * torch.eye(dim, dtype=cov.dtype)

    cov_p, cov_q = shrunk(cov_p), shrunk(cov_q)
    inverse_q = torch.linalg.inv(cov_q)
    diff = (mean_q - mean_p).unsqueeze(1)
    kl = 0.5 * (torch.trace(inverse_q @ cov_p) + (diff.T @ inverse_q @ diff).squeeze()
                - cov_p.shape[0] + torch.logdet(cov_q) - torch.logdet(cov_p))
    return float(kl)


def fid_of_moments(mean_g: torch.Tensor, cov_g: torch.Tensor, mean_r: torch.Tensor, cov_r: torch.Tensor) -> float:
    """fid_of_features of two feature sets given by their means and covariances (float64), as torchmetrics'
    FrechetInceptionDistance computes it from the sums it accumulates, float32 at the end as it returns it."""
    from torchmetrics.image.fid import _compute_fid   # see fid_from_features
    return float(_compute_fid(mean_r, cov_r, mean_g, cov_g).float())


def inception_score_of_sums(probability_sum: torch.Tensor, plogp_sum: torch.Tensor, count: int) -> float:
    """inception_score_of_logits (one split) from sums over the images of the class probabilities p_i (K,) and of
    sum_k p_ik log p_ik: exp(mean_i KL(p_i || mean p)) = exp(plogp_sum / n - sum_k pbar_k log pbar_k)."""
    mean = probability_sum.double() / count
    return float(torch.exp(plogp_sum.double() / count - torch.special.xlogy(mean, mean).sum()))


# --- uncertainty: bootstrap over test images (from features extracted once) and intervals over seeds ---

LEVEL = 0.95
Z_95 = 1.959963984540054  # two-sided 95 % normal quantile


def proportion_interval(share: float | None, count: int | None, z: float = Z_95) -> list[float] | None:
    """The Wilson 95 % interval of a share measured on `count` independent images (None without either): honest
    at 0 and 1, where the normal interval collapses to a point."""
    if share is None or not count:
        return None
    centre = (share + z * z / (2 * count)) / (1 + z * z / count)
    half = z * math.sqrt(share * (1 - share) / count + z * z / (4 * count * count)) / (1 + z * z / count)
    return [round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6)]


def fid_from_features(generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """FID between feature sets, the formula torchmetrics' FrechetInceptionDistance computes (float64).

    Batched: (R, N, D) feature sets give R distances, so a bootstrap reuses features extracted once."""
    # torchmetrics has no public function for FID from moments: its private one is used here and nowhere else, and
    # tests/bench/test_bench.py::test_feature_scores_match_torchmetrics_and_ties_are_not_wins fails if it moves or changes
    from torchmetrics.image.fid import _compute_fid

    def moments(features):
        features = features.double()
        mean = features.mean(dim=-2)
        centred = features - mean.unsqueeze(-2)
        return mean, centred.transpose(-1, -2) @ centred / (features.shape[-2] - 1)
    mean_g, cov_g = moments(generated)
    mean_r, cov_r = moments(real)
    if generated.dim() == 2:
        return _compute_fid(mean_r, cov_r, mean_g, cov_g)
    # _compute_fid traces a single matrix: the batched form of the same expression
    a = (mean_r - mean_g).square().sum(dim=-1)
    b = cov_r.diagonal(dim1=-2, dim2=-1).sum(-1) + cov_g.diagonal(dim1=-2, dim2=-1).sum(-1)
    c = torch.linalg.eigvals(cov_r @ cov_g).sqrt().real.sum(dim=-1)
    return a + b - 2 * c


def inception_score_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """IS with one split, as torchmetrics' InceptionScore computes it; batched over leading dims."""
    prob = logits.double().softmax(dim=-1)
    log_prob = logits.double().log_softmax(dim=-1)
    mean_prob = prob.mean(dim=-2, keepdim=True)
    return (prob * (log_prob - mean_prob.log())).sum(dim=-1).mean(dim=-1).exp()


BOOTSTRAP_MEMORY = 256 * 2 ** 20   # bytes of resampled rows a bootstrap gathers at once (a set of any size)


def bootstrap_indices(n: int, resamples: int, seed: int) -> torch.Tensor:
    """(resamples, n) indices drawn with replacement, a pure function of the seed."""
    return torch.cat(list(bootstrap_chunks(n, resamples, seed)))


def bootstrap_chunks(n: int, resamples: int, seed: int, row_bytes: int = 8) -> Iterator[torch.Tensor]:
    """The rows of bootstrap_indices(n, resamples, seed), a chunk at a time: at most 100 resamples, and fewer when
    their gathered data (`row_bytes` per resampled image) would pass BOOTSTRAP_MEMORY. The generator draws the rows
    in order, so they do not depend on the chunk size."""
    generator = torch.Generator().manual_seed(seed)
    chunk = max(1, min(100, BOOTSTRAP_MEMORY // max(1, n * row_bytes)))
    for start in range(0, resamples, chunk):
        yield torch.randint(n, (min(chunk, resamples - start), n), generator=generator)


def bootstrap_interval(estimate: float | None, replicates: torch.Tensor) -> dict | None:
    """Normal bootstrap interval: estimate ± z * (std of the replicates). The standard error is
    taken from the replicates, not their percentiles: a resample repeats images, which biases set
    statistics such as FID upward, but barely changes their spread."""
    if estimate is None or replicates is None or len(replicates) < 2:
        return None
    replicates = replicates.double()
    replicates = replicates[torch.isfinite(replicates)]
    if len(replicates) < 2:
        return None
    se = float(replicates.std())
    return {"se": se, "lo": estimate - Z_95 * se, "hi": estimate + Z_95 * se}


def bootstrap_statistic(statistic, indices: torch.Tensor, chunk: int = 100) -> torch.Tensor:
    """statistic(index batch (r, n)) -> (r,) values, over every row of `indices`, in chunks."""
    return torch.cat([statistic(indices[start:start + chunk]).double().reshape(-1)
                      for start in range(0, len(indices), chunk)])


def bootstrap_scores(n: int, resamples: int, seed: int, *, generated_features=None, real_features=None,
                     per_image=None, logits=None, noise_features=None,
                     noise_shrink: float = 0.1) -> dict[str, torch.Tensor]:
    """Bootstrap replicates of each score that can be computed from what is given (a row per image of n), over
    the resamples of bootstrap_indices(n, resamples, seed); every score sees the same resampled images (outputs and
    their own ground truth resampled together). The resamples are drawn a memory-bounded chunk at a time."""
    widths = [t.shape[1] for t in (generated_features, real_features, logits, noise_features) if t is not None]
    row_bytes = 8 * 3 * max(1, sum(widths))   # float64 rows, gathered and centred: about three copies at once
    parts: dict[str, list[torch.Tensor]] = {}
    for idx in bootstrap_chunks(n, resamples, seed, row_bytes):
        chunk = {}
        if generated_features is not None and real_features is not None:
            chunk["fid"] = fid_from_features(generated_features[idx], real_features[idx])
        for name, values in (per_image or {}).items():
            if values is not None:
                chunk[name] = values.double()[idx].mean(dim=1)
        if logits is not None:
            chunk["is"] = inception_score_from_logits(logits[idx])
        if noise_features is not None and generated_features is not None:
            chunk["noise_kl"] = gaussian_kl_batched(generated_features[idx], noise_features[idx], noise_shrink)
        for name, values in chunk.items():
            parts.setdefault(name, []).append(values.double().reshape(-1))
    return {name: torch.cat(values) for name, values in parts.items()}


def gaussian_kl_batched(features_p: torch.Tensor, features_q: torch.Tensor, shrink: float = 1e-2) -> torch.Tensor:
    """gaussian_kl over a batch of feature sets (R, N, D) -> (R,), the same fit and shrinkage."""
    def fit(features):
        features = features.double()
        mean = features.mean(dim=-2)
        centred = features - mean.unsqueeze(-2)
        cov = centred.transpose(-1, -2) @ centred / (features.shape[-2] - 1)
        dim = cov.shape[-1]
        eye = torch.eye(dim, dtype=cov.dtype)
        trace = cov.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None]
        return mean, (1 - shrink) * cov + shrink * trace / dim * eye + 1e-6 * eye

    mean_p, cov_p = fit(features_p)
    mean_q, cov_q = fit(features_q)
    inverse_q = torch.linalg.inv(cov_q)
    diff = (mean_q - mean_p).unsqueeze(-1)
    quadratic = (diff.transpose(-1, -2) @ inverse_q @ diff).squeeze(-1).squeeze(-1)
    return 0.5 * ((inverse_q @ cov_p).diagonal(dim1=-2, dim2=-1).sum(-1) + quadratic - cov_p.shape[-1]
                  + torch.logdet(cov_q) - torch.logdet(cov_p))


def t_quantile(level: float, dof: float) -> float:
    from scipy.stats import t   # deferred for start-up time
    return float(t.ppf(0.5 + level / 2, dof))


def seed_interval(values: list[float], level: float = LEVEL) -> dict | None:
    """Mean over seeds and its Student-t interval; None without values, half-width None for one value."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return {"mean": mean, "hw": None, "n": 1}
    std = float(torch.tensor(values, dtype=torch.float64).std())
    return {"mean": mean, "hw": t_quantile(level, len(values) - 1) * std / math.sqrt(len(values)), "n": len(values)}


def combined_half_width(*half_widths: float | None) -> float | None:
    """Independent sources of error add in quadrature; None if none is known."""
    known = [h for h in half_widths if h is not None]
    return math.sqrt(sum(h * h for h in known)) if known else None


def compare(a: float | None, hw_a: float | None, b: float | None, hw_b: float | None, good: str | None) -> str | None:
    """'better', 'worse' or 'tie' for a against b, with `good` 'higher' or 'lower'. A difference
    inside the combined interval sqrt(hw_a² + hw_b²) is a tie, never a win."""
    if a is None or b is None or good is None:
        return None
    margin = combined_half_width(hw_a, hw_b) or 0.0
    if abs(a - b) <= margin:
        return "tie"
    return "better" if (a > b) == (good == "higher") else "worse"


def paired_difference(a_seeds: list[float], b_seeds: list[float], a_replicates: torch.Tensor,
                      b_replicates: torch.Tensor, *, seeds_paired: bool = False, level: float = LEVEL,
                      borrowed: tuple = (None, None)) -> dict:
    """The difference a - b of two rows scored on the same test images with the same bootstrap resamples.

    `a_seeds`/`b_seeds`: each row's score per (unlearning or training) seed; `a_replicates`/`b_replicates`:
    (seeds, R) bootstrap replicates of those scores, resample r drawing the same images for every row. The
    image part of the interval is the spread of the per-resample difference of the seed means, so the noise the
    rows share (the same hard images) cancels instead of being counted twice. The seed part is a Student-t
    interval of the difference: of the per-seed differences when the seeds are paired, else Welch's from the two
    rows' seed spreads, where a row of one seed (one fixed model, such as the original) adds no spread of its own
    and the other row's alone is counted (Welch's then is the one-sample t interval of its mean). A row of one seed
    that is one unlearning run of a method (a sweep point) is one draw of that run's seed noise: `borrowed` gives,
    per row, the seed spread {"sd", "dof"} of its method's main row, counted as that one draw's variance (Welch's
    degrees of freedom then treat it as an estimate of its own: right against another method's row, optimistic
    against the very row it was borrowed from, a comparison no verdict makes). The two parts add in quadrature."""
    a, b = [float(v) for v in a_seeds], [float(v) for v in b_seeds]
    difference = sum(a) / len(a) - sum(b) / len(b)
    replicate_difference = a_replicates.double().mean(dim=0) - b_replicates.double().mean(dim=0)
    image_hw = Z_95 * float(replicate_difference.std()) if len(replicate_difference) >= 2 else None
    seed_hw = None
    if seeds_paired:
        if len(a) != len(b):
            raise ValueError("paired seeds need the same number of seeds on both rows")
        per_seed = seed_interval([x - y for x, y in zip(a, b)], level)
        seed_hw = per_seed["hw"] if per_seed else None
    else:
        # (variance of the row's mean, its degrees of freedom) for each row with a seed spread
        spreads = [(float(torch.tensor(v, dtype=torch.float64).var()) / len(v), len(v) - 1) if len(v) >= 2
                   else (spread["sd"] ** 2, spread["dof"]) for v, spread in zip((a, b), borrowed)
                   if len(v) >= 2 or spread]
        total = sum(var for var, _ in spreads)
        if total > 0:
            dof = total ** 2 / sum(var ** 2 / df for var, df in spreads)
            seed_hw = t_quantile(level, dof) * math.sqrt(total)
        elif spreads:
            seed_hw = 0.0
    hw = combined_half_width(image_hw, seed_hw)
    return {"difference": difference, "hw": hw, "image_hw": image_hw, "seed_hw": seed_hw,
            "seeds": [len(a), len(b)], "seeds_paired": seeds_paired}


def paired_verdict(difference: dict, good: str) -> str:
    """'better', 'worse' or 'tie' for row a against row b from paired_difference: a tie when the interval of the
    difference holds zero."""
    margin = difference["hw"] or 0.0
    if abs(difference["difference"]) <= margin:
        return "tie"
    return "better" if (difference["difference"] > 0) == (good == "higher") else "worse"


def can_pair(a: dict | None, b: dict | None) -> bool:
    """Both row statistics carry bootstrap replicates of the same resamples: compare_rows judges them paired."""
    a_reps, b_reps = (a or {}).get("replicates"), (b or {}).get("replicates")
    return bool(a_reps and b_reps and len(a_reps) == len(b_reps))


def compare_rows(a: dict | None, b: dict | None, good: str | None) -> str | None:
    """'better', 'worse' or 'tie' for row a against row b on one score, each given as the bench's row statistic
    ({"mean", "hw", "values": per seed, "replicates": the seed mean's bootstrap replicates}). Paired
    (paired_difference) when both rows carry replicates of the same resamples; otherwise the unpaired rule
    (`compare`), which counts the shared image noise twice and so calls more ties."""
    if not a or not b or a.get("mean") is None or b.get("mean") is None or good is None:
        return None
    a_reps, b_reps = a.get("replicates"), b.get("replicates")
    if can_pair(a, b):
        a_values = [v for v in a.get("values") or [a["mean"]] if v is not None]
        b_values = [v for v in b.get("values") or [b["mean"]] if v is not None]
        difference = paired_difference(a_values, b_values, torch.tensor([a_reps]), torch.tensor([b_reps]),
                                       borrowed=(a.get("seed_spread"), b.get("seed_spread")))
        return paired_verdict(difference, good)
    return compare(a["mean"], _with_borrowed_spread(a), b["mean"], _with_borrowed_spread(b), good)


def _with_borrowed_spread(stat: dict) -> float | None:
    """A row's half-width for the unpaired rule, a one-seed unlearning run's borrowed seed spread added."""
    spread = stat.get("seed_spread")
    if not spread:
        return stat.get("hw")
    return combined_half_width(stat.get("hw"), t_quantile(LEVEL, spread["dof"]) * spread["sd"])
