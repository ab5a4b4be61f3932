"""The relearning attack (method.md section 4b): does a little fine-tuning bring the forgotten class back?

A copy of each model, in memory, is fine-tuned with its family's own training loss on a few
training images of the forget class, for a small budget of steps; forget-class recognition, forget
FID and the hole error on never-seen forget-class images are measured at a few step counts. Two
variants: the whole model trains, or only the encoder (the decoder stays frozen, as encoder-only
methods left it). Every model gets the same images, masks, order and learning rate. A method whose
forgetting comes back much faster than the retrained model's has hidden the knowledge, not removed it.

Nothing is written: the model folders are only read (by whoever loaded the models), and the
models passed in are never modified (each variant trains a deep copy).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from i2i_unlearn.checkpoints import sha256_text
from i2i_unlearn.config import TaskConfig, to_dict
from i2i_unlearn.data import ImageSet
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.loop import step_generator
from i2i_unlearn.methods.base import set_trainable
from i2i_unlearn.models import I2IModel
from i2i_unlearn.models.generation import generate_outputs, hidden_mse
from i2i_unlearn.tasks import check_task, make_mask, pick

VARIANTS = {"whole": "whole", "decoder-frozen": "encoder"}   # variant -> what set_trainable trains


@dataclass
class RelearnConfig:
    steps: int = 50                   # fine-tuning steps (0: no relearning attack)
    images: int = 16                  # forget-class training images fine-tuned on
    batch_size: int = 16
    lr: float = 1e-4                  # AdamW, constant, no weight decay, gradient clipping 1.0
    eval_steps: tuple[int, ...] = (0, 5, 10, 25, 50)   # measured after these many steps (clipped to `steps`)
    variants: tuple[str, ...] = ("whole", "decoder-frozen")
    tasks: list[TaskConfig] = field(default_factory=lambda: [
        TaskConfig("center-inpaint", 0.25), TaskConfig("center-inpaint", 0.5),
        TaskConfig("center-inpaint", 0.75), TaskConfig("outpaint", 0.5)])   # the unlearning tasks
    seed: int = 0

    def check(self) -> None:
        if self.steps < 0 or self.images < 1 or self.batch_size < 1:
            raise UserError("relearning needs steps >= 0, at least 1 image and a batch size >= 1")
        if not self.lr > 0:
            raise UserError(f"the relearning learning rate must be > 0, got {self.lr}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise UserError(f"unknown relearning variant(s) {', '.join(unknown) or '(none)'}; "
                            f"available: {', '.join(VARIANTS)}")
        if any(s < 0 for s in self.eval_steps):
            raise UserError("relearning eval steps must be >= 0")
        for task in self.tasks:
            check_task(task)

    def measured_steps(self) -> list[int]:
        return sorted({0, self.steps, *(s for s in self.eval_steps if s <= self.steps)})


def _measure(model: I2IModel, eval_images: ImageSet, evaluator, forget_indices: list[int], task: TaskConfig,
             seed: int, step: int) -> dict:
    outputs, masks = generate_outputs(model, eval_images.images, task, seed, description="relearning: scoring")
    return {"step": step, "recognition": metrics.recognition_rate(evaluator, outputs, forget_indices),
            "fid": metrics.fid(evaluator, outputs, eval_images.images) if len(eval_images) >= 2 else None,
            "hidden_mse": round(hidden_mse(outputs, eval_images.images, masks), 6)}


def relearn_curves(model: I2IModel, train_images: ImageSet, eval_images: ImageSet, evaluator,
                   forget_indices: list[int], config: RelearnConfig, task: TaskConfig) -> dict:
    """{variant: {"curve": [{step, recognition, fid, hidden_mse}, ...], "trainable_parameters": n}}
    for one model. The model itself is left as it was."""
    config.check()
    measured = config.measured_steps()
    start = _measure(model, eval_images, evaluator, forget_indices, task, config.seed, 0)  # the same for every variant
    result = {}
    for variant in config.variants:
        student = copy.deepcopy(model)
        set_trainable(student, VARIANTS[variant])
        trainable = [p for p in student.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
        curve = [start]
        for step in range(config.steps):
            student.train()
            generator = step_generator(config.seed, step)
            index = torch.randint(len(train_images), (config.batch_size,), generator=generator)
            x = train_images.images[index]
            mask = make_mask(pick(config.tasks, generator), len(x), x.shape[-1], student.mask_grid, generator)
            loss = student.training_loss(x, mask, student.sample_context(x, mask, generator))
            if not torch.isfinite(loss):
                raise UserError(f"the relearning loss became {loss.item()} at step {step}: lower --relearn-lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            if step + 1 in measured:
                curve.append(_measure(student, eval_images, evaluator, forget_indices, task, config.seed, step + 1))
        result[variant] = {"curve": curve, "trainable_parameters": sum(p.numel() for p in trainable)}
        del student, optimizer
    return result


# "back to the original": recognition at least this fraction of the original's before relearning
RETURN_FRACTION = 0.95


def steps_to_reach(curve: list[dict], level: float | None) -> int | None:
    """The first measured step whose recognition reaches `level` (None: not within the budget)."""
    if level is None:
        return None
    return next((point["step"] for point in curve if point["recognition"] is not None
                 and point["recognition"] >= level), None)


def original_name(models: dict[str, I2IModel], reference: str | None) -> str | None:
    """The model the others were unlearned from: one named "original", else the first that records
    no unlearning and is not the reference."""
    if "original" in models:
        return "original"
    return next((name for name, model in models.items() if name != reference
                 and not getattr(model, "pretrained_info", {}).get("unlearning")), None)


def relearning_attack(models: dict[str, I2IModel], train_images: ImageSet, eval_images: ImageSet, evaluator,
                      forget_indices: list[int], config: RelearnConfig, *, task: TaskConfig,
                      reference: str | None = None, progress=None) -> dict:
    """The attack on every model; steps to reach half the original's recognition, and each
    model's pace relative to the reference's (the retrained model: > 1 = slower than retrain)."""
    per_model = {}
    for name, model in models.items():
        per_model[name] = {"variants": relearn_curves(model, train_images, eval_images, evaluator, forget_indices,
                                                      config, task)}
        if progress:
            progress(f"relearned {name}")
    record = {"original": original_name(models, reference), "reference": reference, "models": per_model}
    relearning_paces(record, config.variants[0])
    return {"config": {**{k: v for k, v in to_dict(config).items() if k != "tasks"},
                       "tasks": [to_dict(t) for t in config.tasks], "eval_task": to_dict(task),
                       "optimizer": "AdamW, constant lr, no weight decay, grad clip 1.0",
                       "train_ids_sha256": sha256_text("\n".join(train_images.ids)),
                       "eval_images": len(eval_images)}, **record}


def relearning_paces(record: dict, variant: str = "whole") -> dict:
    """Each curve's paces, from the curves alone (so an older record can be re-read): the steps to half
    the original's recognition (its `variant` curve at step 0), and the steps back to the original's
    own level (RETURN_FRACTION of it). The second matters when the retrained model already starts above
    half (the visible frame keeps the class recognisable): then every model "reaches" half at once,
    while only a model that hid the knowledge climbs back to the original's level within the budget."""
    per_model, original, reference = record["models"], record.get("original"), record.get("reference")
    start = per_model[original]["variants"][variant]["curve"][0]["recognition"] if original is not None else None
    half = None if start is None else start / 2
    back = None if start is None else start * RETURN_FRACTION
    for entry in per_model.values():
        for result in entry["variants"].values():
            curve = result["curve"]
            result["steps_to_half_original"] = steps_to_reach(curve, half)
            result["steps_to_original"] = steps_to_reach(curve, back)
            result["mean_recognition"] = round(sum(p["recognition"] for p in curve) / len(curve), 4)
            result["final_recognition"] = curve[-1]["recognition"]
    for entry in per_model.values():
        for name, result in entry["variants"].items():
            mine = result["steps_to_half_original"]
            theirs = per_model[reference]["variants"][name]["steps_to_half_original"] if reference else None
            # how much sooner this model gets there than the reference (None when either never
            # or the reference already starts there)
            result["speedup_vs_reference"] = round(theirs / mine, 3) if mine and theirs else None
    record["half_original_recognition"] = None if half is None else round(half, 4)
    record["original_return_level"] = None if back is None else round(back, 4)
    return record
