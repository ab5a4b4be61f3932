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
import math
from dataclasses import dataclass, field

import torch

from i2i_unlearn.checkpoints import sha256_text
from i2i_unlearn.config import TaskConfig, to_dict
from i2i_unlearn.data import ImageSet, ImageSource
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.evaluation.audit.cache import cached_json, ids_sha256
from i2i_unlearn.loop import step_generator
from i2i_unlearn.methods.base import set_trainable
from i2i_unlearn.models import I2IModel
from i2i_unlearn.models.generation import generate_outputs, hidden_mse
from i2i_unlearn.tasks import check_task, make_mask, pick

# fine-tuning attacks -> (what set_trainable trains, the images fine-tuned on)
VARIANTS = {"whole": ("whole", "forget"), "decoder-frozen": ("encoder", "forget"),
            # unrelated data brings erased knowledge back (the literature's cheap attack): retain images only
            "retain-finetune": ("whole", "retain")}
QUANTIZATION_BITS = (8, 4)   # round-to-nearest, per output channel: the other cheap attack


@dataclass
class RelearnConfig:
    steps: int = 50                   # fine-tuning steps (0: no relearning attack)
    images: int = 16                  # training images fine-tuned on (forget class; retain classes for retain-finetune)
    batch_size: int = 16
    lr: float = 1e-4                  # AdamW, constant, no weight decay, gradient clipping 1.0
    eval_steps: tuple[int, ...] = (0, 5, 10, 25, 50)   # measured after these many steps (clipped to `steps`)
    variants: tuple[str, ...] = ("whole", "decoder-frozen", "retain-finetune")
    tasks: list[TaskConfig] = field(default_factory=lambda: [
        TaskConfig("center-inpaint", 0.25), TaskConfig("center-inpaint", 0.5),
        TaskConfig("center-inpaint", 0.75), TaskConfig("outpaint", 0.5)])   # the unlearning tasks
    seed: int = 0                     # the measurement's masks (the same for every model, seed and step)
    attack_seeds: tuple[int, ...] = (0, 1, 2)   # each picks its own training images and batches
    quantize_bits: tuple[int, ...] = QUANTIZATION_BITS   # weight quantization attacks (none: ())

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
        if not self.attack_seeds or len(set(self.attack_seeds)) != len(self.attack_seeds):
            raise UserError(f"relearning attack seeds must be distinct and at least one, got {self.attack_seeds}")
        if any(b not in range(2, 17) for b in self.quantize_bits):
            raise UserError(f"quantization bits must be between 2 and 16, got {self.quantize_bits}")
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


def attack_images(pool: ImageSource, count: int, attack_seed: int) -> ImageSet:
    """The `count` training images one attack seed fine-tunes on: its own seeded draw from the pool, in memory."""
    if len(pool) < count:
        raise UserError(f"only {len(pool)} training images for the relearning attack's {count} (--relearn-images)")
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(1000 + attack_seed))
    return pool.subset(order[:count].sort().values).materialize()


def _fine_tune_curve(model: I2IModel, images: ImageSet, trains: str, attack_seed: int, measure,
                     config: RelearnConfig, start: dict) -> tuple[list[dict], int]:
    student = copy.deepcopy(model)
    set_trainable(student, trains)
    trainable = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    measured, curve = config.measured_steps(), [start]
    for step in range(config.steps):
        student.train()
        generator = step_generator(attack_seed, step)
        index = torch.randint(len(images), (config.batch_size,), generator=generator)
        x = images.images[index]
        mask = make_mask(pick(config.tasks, generator), len(x), x.shape[-1], student.mask_grid, generator)
        loss = student.training_loss(x, mask, student.sample_context(x, mask, generator))
        if not torch.isfinite(loss):
            raise UserError(f"the relearning loss became {loss.item()} at step {step}: lower --relearn-lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        if step + 1 in measured:
            curve.append(measure(student, step + 1))
    return curve, sum(p.numel() for p in trainable)


def mean_curve(curves: list[list[dict]]) -> list[dict]:
    """Per measured step: the mean over attack seeds of each score, and the seeds' min and max recognition."""
    out = []
    for points in zip(*curves, strict=True):
        entry = {"step": points[0]["step"]}
        for key in ("recognition", "fid", "hidden_mse"):
            values = [p[key] for p in points if p.get(key) is not None]
            entry[key] = round(sum(values) / len(values), 6) if values else None
        recognitions = [p["recognition"] for p in points if p.get("recognition") is not None]
        entry["recognition_min"] = min(recognitions, default=None)
        entry["recognition_max"] = max(recognitions, default=None)
        out.append(entry)
    return out


def quantized(model: I2IModel, bits: int) -> I2IModel:
    """A copy with every weight matrix and kernel (2 or more dimensions) rounded to `bits`-bit integers per
    output channel (symmetric round-to-nearest), then back to float: what deploying it quantized computes."""
    copy_ = copy.deepcopy(model)
    levels = 2 ** (bits - 1) - 1
    with torch.no_grad():
        for parameter in copy_.parameters():
            if parameter.dim() >= 2:
                flat = parameter.flatten(1)
                scale = flat.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / levels
                parameter.copy_((torch.round(flat / scale).clamp(-levels, levels) * scale).view_as(parameter))
    return copy_


def relearn_curves(model: I2IModel, pools: dict[str, ImageSource], eval_images: ImageSet, evaluator,
                   forget_indices: list[int], config: RelearnConfig, task: TaskConfig) -> dict:
    """{variant: {"curve": mean over attack seeds, "seeds": {seed: curve}, "trainable_parameters": n}} for one
    model (a curve: [{step, recognition, fid, hidden_mse}, ...]), and {"quantize-<bits>": point} for each
    quantization. `pools`: "forget" (forget-class training images) and, for retain-finetune, "retain". The
    model itself is left as it was."""
    config.check()

    def measure(m, step):
        return _measure(m, eval_images, evaluator, forget_indices, task, config.seed, step)
    start = measure(model, 0)   # the same for every variant and seed
    result = {}
    for variant in config.variants:
        trains, pool = VARIANTS[variant]
        if pool not in pools:
            raise UserError(f"the {variant} relearning attack needs {pool} training images")
        curves, trainable = {}, 0
        for attack_seed in config.attack_seeds:
            images = attack_images(pools[pool], config.images, attack_seed)
            curves[attack_seed], trainable = _fine_tune_curve(model, images, trains, attack_seed, measure, config,
                                                              start)
        result[variant] = {"curve": mean_curve(list(curves.values())), "seeds": {str(s): c for s, c in curves.items()},
                           "trainable_parameters": trainable}
    for bits in config.quantize_bits:
        result[f"quantize-{bits}"] = {"curve": [measure(quantized(model, bits), 0)], "seeds": {},
                                      "trainable_parameters": 0}
    return result


# the allowance for a point's own measurement: NOISE_Z x sqrt(p (1 - p) / (eval images x attack seeds))
NOISE_Z = 1.96
NOISE_DOC = (f"a point counts as inside when within {NOISE_Z} x sqrt(p (1 - p) / (eval images x attack seeds)) of the "
             "band, p its own recognition: an allowance for its own measurement, the band's edges being measured "
             "values too (the attack seeds share the eval images, so it is an allowance, not a standard error). "
             "Without it a retrained seed held out of the band often fell outside it: the target was stricter than "
             "retraining itself")


def measurement_allowance(recognition: float, eval_images: int | None, curves: int) -> float:
    """NOISE_DOC's allowance for a recognition share measured on `eval_images` images and averaged over `curves`
    attack seeds (0 when the count is unknown: an older record)."""
    if not eval_images:
        return 0.0
    return NOISE_Z * math.sqrt(recognition * (1 - recognition) / (eval_images * max(1, curves)))


def band(record: dict, members: list[str], eval_images: int | None = None) -> dict:
    """Per attack (variant) and measured step, the retrained band: the lowest and highest recognition of the
    `members` (retrained models of different training seeds) over every attack seed; then each model's area
    outside it: the mean over the measured span of how far its seed-mean curve lies outside the band, beyond the
    point's own measurement error (NOISE_DOC; `eval_images`: how many images each recognition is measured on)
    (recognition units; 0: inside at every step), and whether it ever lies above it (relearned more than a
    model that never saw the class). A member is read against the band of the other members (held out of its
    own band: the ideal row), when there are at least two."""
    models = record["models"]
    bands = _bands(models, members)
    for name, entry in models.items():
        own = _bands(models, [m for m in members if m != name]) if name in members and len(members) >= 2 else bands
        for variant, result in entry["variants"].items():
            limits = {b["step"]: b for b in own.get(variant, [])}
            curves = len(result.get("seeds") or {}) or 1

            def outside_by(p, limit):
                slack = measurement_allowance(p["recognition"], eval_images, curves)
                return (max(0.0, p["recognition"] - slack - limit["hi"]) + max(0.0, limit["lo"] - p["recognition"] - slack),
                        p["recognition"] - slack > limit["hi"])
            outside = [(p["step"], *outside_by(p, limits[p["step"]]))
                       for p in result["curve"] if p["step"] in limits and p.get("recognition") is not None]
            result["band_area"] = _mean_over_span(outside)
            result["above_band"] = any(above for _, _, above in outside) if outside else None
            result["band_held_out"] = own is not bands
    return {"members": members, "bands": bands,
            "measurement_allowance": {"z": NOISE_Z, "eval_images": eval_images, "doc": NOISE_DOC}}


def _bands(models: dict, members: list[str]) -> dict:
    bands = {}
    for variant in dict.fromkeys(v for name in members for v in models[name]["variants"]):
        per_step: dict[int, list[float]] = {}
        for name in members:
            result = models[name]["variants"][variant]
            for curve in (list(result["seeds"].values()) or [result["curve"]]):
                for point in curve:
                    if point.get("recognition") is not None:
                        per_step.setdefault(point["step"], []).append(point["recognition"])
        bands[variant] = [{"step": step, "lo": min(v), "hi": max(v)} for step, v in sorted(per_step.items())]
    return bands


def _mean_over_span(points: list[tuple[int, float, bool]]) -> float | None:
    """Trapezoid area of the distances over the steps, divided by the span (one point: its distance)."""
    if not points:
        return None
    if len(points) == 1 or points[-1][0] == points[0][0]:
        return round(points[0][1], 6)
    area = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(points, points[1:]))
    return round(area / (points[-1][0] - points[0][0]), 6)


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


def relearning_attack(models: dict[str, I2IModel], pools: dict[str, ImageSource], eval_images: ImageSource,
                      evaluator, forget_indices: list[int], config: RelearnConfig, *, task: TaskConfig,
                      reference: str | None = None, band_models: list[str] | None = None, progress=None,
                      cache_dir=None) -> dict:
    """The attacks on every model; steps to reach half the original's recognition, each model's pace relative
    to the reference's (the retrained model: > 1 = slower than retrain), and, with `band_models` (retrained
    models of several training seeds; default: the reference), the retrained band and each model's area
    outside it. With `cache_dir`, each model's curves are kept there (cache.py) and read back next time."""
    per_model = {}
    eval_images = eval_images.materialize()   # a sample (audit --max-images), scored at every measured step
    depends = {"config": to_dict(config), "eval_images": ids_sha256(eval_images), "task": to_dict(task),
               "pools": {name: ids_sha256(pool) for name, pool in pools.items()},
               "evaluator": getattr(evaluator, "sha256", None), "forget_indices": forget_indices}
    for name, model in models.items():
        per_model[name] = {"variants": cached_json(
            cache_dir, "relearn", {"model": model.pretrained_info["weights_sha256"], **depends},
            lambda: relearn_curves(model, pools, eval_images, evaluator, forget_indices, config, task))}
        if progress:
            progress(f"relearned {name}")
    record = {"original": original_name(models, reference), "reference": reference, "models": per_model}
    relearning_paces(record, config.variants[0])
    members = band_models or ([reference] if reference else [])
    unknown = [name for name in members if name not in models]
    if unknown:
        raise UserError(f"the relearning band's model(s) {', '.join(unknown)} are not audited: {', '.join(models)}")
    record["band"] = band(record, members, len(eval_images)) if members else None
    return {"config": {**{k: v for k, v in to_dict(config).items() if k != "tasks"},
                       "tasks": [to_dict(t) for t in config.tasks], "eval_task": to_dict(task),
                       "optimizer": "AdamW, constant lr, no weight decay, grad clip 1.0",
                       "pool_ids_sha256": {name: sha256_text("\n".join(pool.ids)) for name, pool in pools.items()},
                       "quantization": "symmetric round-to-nearest per output channel of every weight with 2+ dims",
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
