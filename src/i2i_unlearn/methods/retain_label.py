"""Baseline: retain outputs pulled to the teacher's outputs on the same images; forget outputs
pulled to the teacher's outputs on the retain images of the same batch (paired by position,
under the forget sample's mask and randomness)."""
import torch

from i2i_unlearn.errors import UserError
from i2i_unlearn.methods.base import Batch, Method, register_method


@register_method
class RetainLabel(Method):
    name = "retain-label"
    summary = "whole model: retain outputs kept, forget outputs pulled to the teacher's outputs on retain images"
    trains = "whole"

    def loss(self, student, teacher, forget: Batch, retain: Batch, generator):
        if len(forget.images) != len(retain.images):
            raise UserError("retain-label pairs forget and retain images: the batches must be the same size")
        with torch.no_grad():
            retain_target = teacher.predict(retain.images, retain.mask, retain.ctx)
            forget_target = teacher.predict(retain.images, forget.mask, forget.ctx)
        return {"retain": torch.mean((student.predict(retain.images, retain.mask, retain.ctx) - retain_target) ** 2),
                "forget": torch.mean((student.predict(forget.images, forget.mask, forget.ctx) - forget_target) ** 2)}
