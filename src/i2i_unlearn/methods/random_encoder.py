"""Baseline: as `ours`, but the forget target is Gaussian noise in feature space with the mean
and std of the teacher's features of the forget images (method.md section 3)."""
import torch

from i2i_unlearn.distributed import WHOLE, Shard
from i2i_unlearn.methods.base import Batch, register_method
from i2i_unlearn.methods.ours import Ours


def _gaussian_like(features, generator, shard: Shard = WHOLE):
    """Noise with the mean and std of the global batch's features; drawn for the global batch (the
    generator's draws stay those of one process) and cut to this process's rows."""
    if isinstance(features, list):
        return [_gaussian_like(f, generator, shard) for f in features]
    n = len(features) * shard.count
    noise = shard.take(torch.randn((n, *features.shape[1:]), generator=generator), n).to(features)
    mean, std = shard.mean_std(features)
    return noise * std + mean


@register_method
class RandomEncoder(Ours):
    name = "random-encoder"
    summary = "encoder-only: forget encodings pulled to Gaussian noise matching the teacher's feature statistics"
    trains = "encoder"

    def forget_target(self, teacher, forget: Batch, generator):
        return _gaussian_like(teacher.encode(forget.images, forget.mask, forget.ctx), generator, forget.shard)
