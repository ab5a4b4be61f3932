"""The numbers of method.md section 4, each a function of generated images, ground truth and an
evaluator (or embedder). FID/KID/IS come from torchmetrics with our evaluator as `feature`."""
from __future__ import annotations

import warnings

import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance


# torchmetrics warns that KID/IS keep all features in memory (a few hundred small vectors here)
warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer.*")


def _batches(images, size=256):
    return (images[i:i + size] for i in range(0, len(images), size))


def fid(evaluator, generated: torch.Tensor, real: torch.Tensor) -> float:
    metric = FrechetInceptionDistance(feature=evaluator.feature_module(), normalize=True)
    for batch in _batches(real):
        metric.update(batch, real=True)
    for batch in _batches(generated):
        metric.update(batch, real=False)
    return float(metric.compute())


def kid(evaluator, generated: torch.Tensor, real: torch.Tensor, seed: int = 0) -> tuple[float, float]:
    """KID mean and std over subsets (subset size: the smaller set, at most 100)."""
    torch.manual_seed(seed)  # torchmetrics draws its subsets from the global generator
    size = min(100, len(generated), len(real))
    metric = KernelInceptionDistance(feature=evaluator.feature_module(), subsets=50, subset_size=size, normalize=True)
    for batch in _batches(real):
        metric.update(batch, real=True)
    for batch in _batches(generated):
        metric.update(batch, real=False)
    with warnings.catch_warnings():  # one subset (set size <= subset size) has no std: torchmetrics warns
        warnings.simplefilter("ignore", UserWarning)
        mean, std = metric.compute()
    return float(mean), float(std)


def inception_score(evaluator, generated: torch.Tensor) -> float | None:
    """IS of the generated set from the evaluator's class probabilities (one split)."""
    if not evaluator.has_classes:
        return None
    metric = InceptionScore(feature=evaluator.logit_module(), splits=1)  # floats pass through as they are
    for batch in _batches(generated):
        metric.update(batch)
    with warnings.catch_warnings():  # one split has no std: torchmetrics warns
        warnings.simplefilter("ignore", UserWarning)
        return float(metric.compute()[0])


def similarity(evaluator, generated: torch.Tensor, real: torch.Tensor) -> float:
    """CLIP-style: mean cosine similarity of each output's embedding to its own ground truth's."""
    return float((evaluator.embeddings(generated) * evaluator.embeddings(real)).sum(dim=1).mean())


def recognition_rate(evaluator, generated: torch.Tensor, class_indices: list[int]) -> float | None:
    """Share of images the evaluator classifies as one of `class_indices` (the forget classes)."""
    if not evaluator.has_classes or not class_indices:
        return None
    predicted = evaluator.predict(generated)
    return float(torch.isin(predicted, torch.tensor(class_indices)).float().mean())


def gaussian_kl(features_p: torch.Tensor, features_q: torch.Tensor, shrink: float = 1e-2) -> float:
    """KL(N_p || N_q) of Gaussians fitted to two feature sets (method.md section 5).

    Covariances are shrunk toward a scaled identity, since a few hundred samples in tens of
    dimensions give singular estimates; the same shrinkage is used for every model.
    """
    def fit(features):
        features = features.double()
        mean = features.mean(dim=0)
        cov = torch.cov(features.T)
        dim = cov.shape[0]
        cov = (1 - shrink) * cov + shrink * torch.trace(cov) / dim * torch.eye(dim, dtype=cov.dtype)
        return mean, cov + 1e-6 * torch.eye(dim, dtype=cov.dtype)

    mean_p, cov_p = fit(features_p)
    mean_q, cov_q = fit(features_q)
    inverse_q = torch.linalg.inv(cov_q)
    diff = (mean_q - mean_p).unsqueeze(1)
    kl = 0.5 * (torch.trace(inverse_q @ cov_p) + (diff.T @ inverse_q @ diff).squeeze()
                - cov_p.shape[0] + torch.logdet(cov_q) - torch.logdet(cov_p))
    return float(kl)
