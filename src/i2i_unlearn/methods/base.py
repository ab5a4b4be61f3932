"""Unlearning methods: the registry, the shared objective, and the pieces methods share.

A method turns one step's forget and retain batches into loss terms. It sees the student (being
tuned), the teacher (the frozen original) and the batches, and nothing else: every model
family works with every method through the I2IModel protocol.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from i2i_unlearn.config import UnlearnConfig
from i2i_unlearn.distributed import WHOLE, Shard
from i2i_unlearn.errors import UserError

if TYPE_CHECKING:   # annotations only: the registry lists without importing transformers and diffusers
    from i2i_unlearn.models import I2IModel

METHODS: dict[str, type["Method"]] = {}


def register_method(cls):
    METHODS[cls.name] = cls
    return cls


def get_method(name: str, config: UnlearnConfig) -> "Method":
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; available: {', '.join(METHODS)}")
    return METHODS[name](config)


@dataclass
class Batch:
    """One side of a step: images, the task mask, and the randomness teacher and student share.

    Under many processes a method sees this process's rows (`shard`) of the step's global batch;
    `whole` is the global batch (every process holds it), for what depends on all of it."""
    images: torch.Tensor
    mask: torch.Tensor
    ctx: dict[str, Any]
    noise: torch.Tensor | None = None   # the noise image per forget image (forget side only)
    shard: Shard = WHOLE
    whole_batch: "Batch | None" = None

    @property
    def whole(self) -> "Batch":
        return self.whole_batch or self

    def share(self, shard: Shard) -> "Batch":
        """This process's rows. The context gets the shard too (`ctx["shard"]`): a family whose loss is
        not a mean of equal per-image terms normalises with it (the VQ-GAN's token cross-entropy)."""
        n = len(self.images)
        return Batch(shard.take(self.images, n), shard.take(self.mask, n), {**shard.take(self.ctx, n), "shard": shard},
                     shard.take(self.noise, n), shard, self)


class Method:
    name: ClassVar[str]
    summary: ClassVar[str]
    trains: ClassVar[str]               # "encoder" (decoder frozen, bit-identical) or "whole"

    def __init__(self, config: UnlearnConfig):
        self.config = config

    def loss(self, student: I2IModel, teacher: I2IModel, forget: Batch, retain: Batch,
             generator: torch.Generator) -> dict[str, torch.Tensor]:
        """{"retain": ..., "forget": ...}; the objective adds them as retain + alpha * forget."""
        raise NotImplementedError

    @classmethod
    def supports(cls, model: I2IModel) -> bool:
        """Whether the method's terms are defined for this model's family."""
        return True

    def combine(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return terms["retain"] + self.config.alpha * terms["forget"]

    def prepare_student(self, student: I2IModel) -> None:
        """Change the student once before its first step (not on resume: the checkpoint holds it)."""


def feature_distance(student_features, teacher_features, normalise: str = "none", shard: Shard = WHOLE) -> torch.Tensor:
    """Mean squared error, summed over feature maps when the encoder returns a list (U-Nets).

    normalise="teacher-variance" divides each map's error by the teacher map's variance, so maps
    with large activations do not dominate (the released code sums raw errors: "none"); the
    variance is the global batch's under many processes (`shard`).
    """
    if isinstance(student_features, torch.Tensor):
        student_features, teacher_features = [student_features], [teacher_features]
    total = 0.0
    for s, t in zip(student_features, teacher_features, strict=True):
        error = torch.mean((s - t) ** 2)
        if normalise == "teacher-variance":
            error = error / (shard.var(t.detach()) + 1e-8)
        elif normalise != "none":
            raise UserError(f"unknown feature_norm {normalise!r}; available: none, teacher-variance")
        total = total + error
    return total


def set_trainable(student: I2IModel, trains: str) -> None:
    """Freeze what a method must not change. Parameters frozen by design (fixed position
    embeddings, a VQ tokenizer) stay frozen either way."""
    by_design = {id(p) for p in student.parameters() if not p.requires_grad}
    by_design |= {id(p) for m in student.frozen_modules() for p in m.parameters()}
    student.requires_grad_(False)
    part = student.encoder if trains == "encoder" else student
    for p in part.parameters():
        p.requires_grad_(id(p) not in by_design)


class UnlearnObjective(nn.Module):
    """Loss of one step. Only the student is a sub-module: under `accelerate launch` only it is
    wrapped for gradient sync; the teacher is a plain frozen attribute.

    The batch is the step's global batch (`batch["shard"]` says which rows are this process's): the
    shared randomness is drawn for all of it, in the order one process draws it, then each side is cut
    to this process's rows, so N processes compute what one process computes."""

    def __init__(self, method: Method, student: I2IModel, teacher: I2IModel):
        super().__init__()
        self.method = method
        self.student = student
        object.__setattr__(self, "teacher", teacher)  # not registered: not wrapped, not saved

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        device = next(self.student.parameters()).device
        self.teacher.to(device)
        generator, shard = batch["generator"], batch.get("shard", WHOLE)
        sides = {}
        for side in ("forget", "retain"):
            images, mask = batch[f"{side}_images"].to(device), batch[f"{side}_mask"].to(device)
            noise = batch.get(f"{side}_noise")
            whole = Batch(images, mask, self.student.sample_context(images, mask, generator),
                          None if noise is None else noise.to(device))
            sides[side] = whole.share(shard)
        terms = self.method.loss(self.student, self.teacher, sides["forget"], sides["retain"], generator)
        return {"loss": self.method.combine(terms), **terms}
