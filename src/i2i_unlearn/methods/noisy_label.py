"""Baseline: the model's own loss on retain, plus alpha times its loss on forget with noise as
the target (a noise image for pixel models; each family says what noise means for it)."""
import torch

from i2i_unlearn.methods.base import Batch, Method, register_method


@register_method
class NoisyLabel(Method):
    name = "noisy-label"
    summary = "whole model: own loss on retain + alpha x own loss on forget with noise as the target"
    trains = "whole"

    def loss(self, student, teacher, forget: Batch, retain: Batch, generator):
        # drawn for the global batch (its token statistics, the generator's draws), then this process's rows
        whole = forget.whole
        with torch.no_grad():
            target = forget.shard.take(student.noise_target(whole.images, whole.noise, generator), len(whole.images))
        return {"retain": student.training_loss(retain.images, retain.mask, retain.ctx),
                "forget": student.training_loss(forget.images, forget.mask, forget.ctx, target=target)}
