"""Baseline: retain outputs pulled to the teacher's outputs on the same images; forget outputs
pulled to the teacher's outputs on the retain images of the same batch (paired by position,
under the forget sample's mask and randomness).

Where a family's output is not an image (diffusion predicts noise), the forget target is the
teacher's restored retain image (`restored`), and the forget term is the family's own loss with
that image as what the forget hole should become. The released Palette code instead pulled the
forget noise prediction to the teacher's noise prediction on a retain image noised with the same
noise: that prediction is close to the noise itself, so its forget term was nearly the ordinary
denoising loss and the baseline barely forgot (method.md section 3)."""
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
            restored_retain = teacher.restored(retain.images, forget.mask, forget.ctx)
            if restored_retain is None:
                forget_target = teacher.predict(retain.images, forget.mask, forget.ctx)
        retain_term = torch.mean((student.predict(retain.images, retain.mask, retain.ctx) - retain_target) ** 2)
        if restored_retain is None:
            forget_term = torch.mean((student.predict(forget.images, forget.mask, forget.ctx) - forget_target) ** 2)
        else:   # the forget hole is denoised toward the teacher's restored retain image
            forget_term = student.training_loss(forget.images, forget.mask, forget.ctx, target=restored_retain)
        return {"retain": retain_term, "forget": forget_term}
