"""`ours` with a substitute forget target (issue: outputs that do not tell).

`ours` pulls a forget image's encoding to the teacher's encoding of a noise image, so forgotten
holes come out as noise or grey: a tell that the input was forgotten. Here the target is the
teacher's encoding of a plausible substitute under the same mask and randomness: for each forget
image, the retain image of the same step whose visible pixels (under the forget image's mask) are
closest in mean squared error. The decoder then draws what it would draw for a retain image that
looks like the forget image from the outside, as a model that never saw the forget class would.

L = ||E(T(x_r)) - E0(T(x_r))||^2 + alpha * ||E(T(x_f)) - E0(T(x_s(f)))||^2, decoder frozen,
s(f) = argmin_r ||(1 - m_f) * (x_f - x_r)||^2 over the step's retain batch.
"""
import torch

from i2i_unlearn.methods.base import Batch, register_method
from i2i_unlearn.methods.ours import Ours


def nearest_visible(forget_images: torch.Tensor, forget_mask: torch.Tensor,
                    candidates: torch.Tensor) -> torch.Tensor:
    """Index into `candidates` of the image whose pixels outside each forget image's hole are closest."""
    visible = (1 - forget_mask).expand_as(forget_images).flatten(1)      # (F, D)
    a, b = forget_images.flatten(1), candidates.flatten(1)                # (F, D), (R, D)
    # sum_d v (a - b)^2 without the (F, R, D) difference tensor
    distance = (visible * a * a).sum(1, keepdim=True) - 2 * (visible * a) @ b.T + visible @ (b * b).T   # (F, R)
    return distance.argmin(dim=1)


@register_method
class OursSubstitute(Ours):
    name = "ours-substitute"
    summary = ("encoder-only: as ours, but forget encodings pulled to the teacher's encodings of the retain image "
               "whose visible part is closest (a plausible substitute instead of noise)")
    trains = "encoder"

    def substitute_target(self, teacher, forget: Batch, retain: Batch):
        """The teacher's encoding of each forget image's substitute, under the forget image's mask and
        randomness. Substitutes come from the step's whole retain batch (under many processes too)."""
        candidates = getattr(retain, "whole", retain).images
        substitutes = candidates[nearest_visible(forget.images, forget.mask, candidates)]
        return teacher.encode(substitutes, forget.mask, forget.ctx)

    def loss(self, student, teacher, forget: Batch, retain: Batch, generator):
        # Ours.loss asks forget_target(teacher, forget, generator) for the target: give it this step's retain batch
        self._retain = retain
        try:
            return super().loss(student, teacher, forget, retain, generator)
        finally:
            self._retain = None

    def forget_target(self, teacher, forget: Batch, generator):
        return self.substitute_target(teacher, forget, self._retain)
