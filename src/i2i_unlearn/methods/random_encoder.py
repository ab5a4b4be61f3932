"""Baseline: as `ours`, but the forget target is Gaussian noise in feature space with the mean
and std of the teacher's features of the forget images (method.md section 3)."""
import torch

from i2i_unlearn.methods.base import Batch, Method, feature_distance, register_method


def _gaussian_like(features, generator):
    if isinstance(features, list):
        return [_gaussian_like(f, generator) for f in features]
    noise = torch.randn(features.shape, generator=generator).to(features)
    return noise * features.std() + features.mean()


@register_method
class RandomEncoder(Method):
    name = "random-encoder"
    summary = "encoder-only: forget encodings pulled to Gaussian noise matching the teacher's feature statistics"
    trains = "encoder"

    def loss(self, student, teacher, forget: Batch, retain: Batch, generator):
        with torch.no_grad():
            retain_target = teacher.encode(retain.images, retain.mask, retain.ctx)
            forget_target = _gaussian_like(teacher.encode(forget.images, forget.mask, forget.ctx), generator)
        norm = self.config.feature_norm
        return {"retain": feature_distance(student.encode(retain.images, retain.mask, retain.ctx), retain_target, norm),
                "forget": feature_distance(student.encode(forget.images, forget.mask, forget.ctx), forget_target, norm)}
