"""UNDO for image-to-image models (Lee et al. 2025, "Distillation robustifies unlearning", arXiv 2506.06278).

An unlearned model only suppresses what it knew: the relearning audit brings the class back in a few
steps. UNDO starts from an *unlearned* model (`--model` is its folder, e.g. an `ours-substitute` run),
moves its weights a fraction `perturb` toward a fresh initialisation (shrink-and-perturb), and distills
that damaged copy from the unlearned model on retain and forget images. Distillation copies the
unlearned model's behaviour (forget images rendered as it renders them), not the capacity it hides,
and the perturbation destroys much of that hidden capacity.

  student_0 = (1 - perturb) * theta_unlearned + perturb * theta_fresh      (every trainable layer)
  L = ||F(x_r) - F_u(x_r)||^2 + alpha * ||F(x_f) - F_u(x_f)||^2             (predict() outputs, same randomness)

theta_fresh: each layer's PyTorch default initialisation, drawn from the run's seed (bit-reproducible).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from i2i_unlearn.errors import UserError
from i2i_unlearn.methods.base import Batch, Method, register_method

if TYPE_CHECKING:
    from i2i_unlearn.models import I2IModel

DEFAULT_PERTURB = 0.3


def shrink_and_perturb(model: I2IModel, fraction: float, seed: int) -> None:
    """Move every trainable parameter `fraction` of the way to a fresh initialisation, in place. Layers
    are re-initialised with their own `reset_parameters` under `seed`; frozen parts and buffers are kept."""
    kept = {name: value.detach().clone() for name, value in model.state_dict().items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    fresh = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.load_state_dict(kept)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                parameter.mul_(1 - fraction).add_(fresh[name], alpha=fraction)


@register_method
class Undo(Method):
    name = "undo"
    summary = ("whole model, from an unlearned model: its weights shrunk toward a fresh initialisation, then "
               "distilled from it on retain and forget images")
    trains = "whole"

    def __init__(self, config):
        super().__init__(config)
        self.perturb = DEFAULT_PERTURB if config.perturb is None else config.perturb
        if not 0.0 <= self.perturb <= 1.0:
            raise UserError(f"perturb must be between 0 and 1 (the share of a fresh initialisation), got {self.perturb}")

    def prepare_student(self, student: I2IModel) -> None:
        shrink_and_perturb(student, self.perturb, self.config.seed)

    def loss(self, student, teacher, forget: Batch, retain: Batch, generator):
        with torch.no_grad():
            retain_target = teacher.predict(retain.images, retain.mask, retain.ctx)
            forget_target = teacher.predict(forget.images, forget.mask, forget.ctx)
        return {"retain": torch.mean((student.predict(retain.images, retain.mask, retain.ctx) - retain_target) ** 2),
                "forget": torch.mean((student.predict(forget.images, forget.mask, forget.ctx) - forget_target) ** 2)}
