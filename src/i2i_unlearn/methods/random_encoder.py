"""Baseline: as `ours`, but the forget target is Gaussian noise in feature space with the mean
and std of the teacher's features of the forget images (method.md section 3)."""
import torch

from i2i_unlearn.methods.base import Batch, register_method
from i2i_unlearn.methods.ours import Ours


def _gaussian_like(features, generator):
    if isinstance(features, list):
        return [_gaussian_like(f, generator) for f in features]
    noise = torch.randn(features.shape, generator=generator).to(features)
    return noise * features.std() + features.mean()


@register_method
class RandomEncoder(Ours):
    name = "random-encoder"
    summary = "encoder-only: forget encodings pulled to Gaussian noise matching the teacher's feature statistics"
    trains = "encoder"

    def forget_target(self, teacher, forget: Batch, generator):
        return _gaussian_like(teacher.encode(forget.images, forget.mask, forget.ctx), generator)
