"""`ours-substitute` on the encoder, and a decoder that cannot draw the forgotten class (issue 33).

The encoder-only methods keep the decoder bit-identical, and the relearning audit found the class back
within 10-25 fine-tuning steps: the frozen decoder still renders it from the original's encodings, the
encoder only stopped producing them. Here the decoder trains too, fed the *original's* encodings (so its
terms reach the decoder alone, and the encoder's terms the encoder alone):

  retain:  ||E(T(x_r)) - E0(T(x_r))||^2 + ||D(E0(T(x_r))) - D0(E0(T(x_r)))||^2
  forget:  ||E(T(x_f)) - E0(T(x_s))||^2 + ||D(E0(T(x_f))) - D0(E0(T(x_s)))||^2

x_s: each forget image's substitute, the retain image of the step whose visible pixels are closest
(`ours-substitute`). The forget image's original encoding then renders the substitute: an encoder
fine-tuned back to the original's encodings finds a decoder that no longer draws the class.
The output terms compare predict()'s output (pixels, token logits), so this method needs a family whose
prediction is its restoration (not the diffusion family's noise prediction).
"""
import torch

from i2i_unlearn.errors import UserError
from i2i_unlearn.methods.base import Batch, Method, feature_distance, register_method
from i2i_unlearn.methods.ours_substitute import nearest_visible


def output_distance(student_output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.mean((student_output - target) ** 2)


@register_method
class OursDecoder(Method):
    name = "ours-decoder"
    summary = ("encoder and decoder: ours-substitute's encoder terms, and the decoder taught to render each forget "
               "image's original encoding as its substitute (retain renderings kept)")
    trains = "whole"

    @classmethod
    def supports(cls, model) -> bool:
        return model.prediction_is_restoration

    def loss(self, student, teacher, forget: Batch, retain: Batch, generator):
        if not self.supports(teacher):
            raise UserError(f"{self.name} compares restorations, and the {teacher.family} family predicts noise, "
                            "not its restoration: use ours-substitute or undo on it")
        candidates = retain.whole.images
        substitutes = candidates[nearest_visible(forget.images, forget.mask, candidates)]
        with torch.no_grad():
            retain_encoding = teacher.encode(retain.images, retain.mask, retain.ctx)
            forget_encoding = teacher.encode(forget.images, forget.mask, forget.ctx)
            substitute_encoding = teacher.encode(substitutes, forget.mask, forget.ctx)
            retain_rendering = teacher.decode(retain_encoding, retain.images, retain.mask, retain.ctx)
            substitute_rendering = teacher.decode(substitute_encoding, substitutes, forget.mask, forget.ctx)
        norm = self.config.feature_norm
        retain_term = (feature_distance(student.encode(retain.images, retain.mask, retain.ctx), retain_encoding, norm,
                                        retain.shard)
                       + output_distance(student.decode(retain_encoding, retain.images, retain.mask, retain.ctx),
                                         retain_rendering))
        forget_term = (feature_distance(student.encode(forget.images, forget.mask, forget.ctx), substitute_encoding,
                                        norm, forget.shard)
                       + output_distance(student.decode(forget_encoding, forget.images, forget.mask, forget.ctx),
                                         substitute_rendering))
        return {"retain": retain_term, "forget": forget_term}

