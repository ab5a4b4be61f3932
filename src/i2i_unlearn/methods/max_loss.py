"""Baseline: gradient ascent on the forget set. The model's own loss on retain minus alpha times
the same loss on forget; the whole model trains (a tokenizer stays frozen)."""
from i2i_unlearn.methods.base import Batch, Method, register_method


@register_method
class MaxLoss(Method):
    name = "max-loss"
    summary = "whole model: own loss on retain minus alpha x own loss on forget"
    trains = "whole"

    def loss(self, student, teacher, forget: Batch, retain: Batch, generator):
        return {"retain": student.training_loss(retain.images, retain.mask, retain.ctx),
                "forget": student.training_loss(forget.images, forget.mask, forget.ctx)}

    def combine(self, terms):
        return terms["retain"] - self.config.alpha * terms["forget"]
