"""The encoder-only method of Li et al. (ICLR 2024), method.md section 2.

L = ||E(T(x_r)) - E0(T(x_r))||^2 + alpha * ||E(T(x_f)) - E0(T(n))||^2, decoder frozen.
"""
import torch

from i2i_unlearn.methods.base import Batch, Method, feature_distance, register_method


@register_method
class Ours(Method):
    name = "ours"
    summary = "encoder-only: retain encodings kept, forget encodings pulled to the teacher's encodings of noise"
    trains = "encoder"

    def forget_target(self, teacher, forget: Batch, generator):
        """The teacher's encoding of the noise images, under the forget images' mask and randomness."""
        if self.config.noise_context == "noise":   # the paper's T(n) on every family, the family's own input ignored
            return teacher.encode_fresh(forget.noise, forget.mask, forget.ctx)
        return teacher.encode_noise(forget.images, forget.noise, forget.mask, forget.ctx)

    def loss(self, student, teacher, forget: Batch, retain: Batch, generator):
        with torch.no_grad():
            retain_target = teacher.encode(retain.images, retain.mask, retain.ctx)
            forget_target = self.forget_target(teacher, forget, generator)
        norm = self.config.feature_norm
        return {"retain": feature_distance(student.encode(retain.images, retain.mask, retain.ctx), retain_target, norm,
                                           retain.shard),
                "forget": feature_distance(student.encode(forget.images, forget.mask, forget.ctx), forget_target, norm,
                                           forget.shard)}
