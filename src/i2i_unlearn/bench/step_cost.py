"""Benchmark: time of one unlearning step of each method vs one training step of the full model.
The command is benchmarks/step_cost.py (`--model DIR`, `--methods`, `--images`, `--repeats`).

A training step is the family's own loss on `--images` images, backward and an optimiser step
over every parameter; an unlearning step is the method's loss on a forget batch and a retain
batch (`--images` images in all, half each, and also `--images` each), backward and a step over
what the method trains. Medians over `--repeats` steps after two warm-up steps; one process.
The issue's limit is timed too: one student encoder forward+backward plus one teacher encoder forward
per image, on the same batches, the teacher encoding the images themselves (no noise image to prepare):
what an encoder-only step cannot go below. `to_limit` says how far each method is from it.
The VQ-GAN's token cache is filled first, for both: the steady state from a run's second epoch on,
where only images new at every step (the noise) still go through the frozen tokenizer.
The script writes the record to benchmarks/results/step_cost_<family>.json (the results page's step-cost
table reads it).

Beside the seconds, the FLOPs of one step, counted (torch's FlopCounterMode: matrix products and convolutions,
forward and backward, on the first batch; elementwise work and the optimiser are not counted): a cost that does not
depend on the machine. At the shipped recipes' batches (training 64 images, unlearning 32 forget + 32 retain) a
run's FLOPs are its optimizer steps times these (bench_cost.py). `flops_only` counts them without timing anything:
a record timed before can gain them on a busy machine, where the times would be wrong.
"""
from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path

import torch

from i2i_unlearn.checkpoints import versions
from i2i_unlearn.config import TaskConfig, TrainConfig, UnlearnConfig, from_dict
from i2i_unlearn.data import make_unlearn_split
from i2i_unlearn.lineage import training_data_config
from i2i_unlearn.loop import make_optimizer, step_generator
from i2i_unlearn.methods import UnlearnObjective, get_method
from i2i_unlearn.methods.base import Method, feature_distance, set_trainable
from i2i_unlearn.models import load_model
from i2i_unlearn.tasks import make_mask
from i2i_unlearn.train import TrainObjective, image_batches
from i2i_unlearn.unlearn import unlearning_batches

TASK = TaskConfig("center-inpaint", 0.5)
METHODS_TIMED = ("ours", "max-loss", "noisy-label", "retain-label", "random-encoder")
FLOP_KEYS = ("training_step_gflop", "unlearning_step_gflop", "gflop_to_training_step")


class EncoderLimit(Method):
    """The issue's cheapest encoder-only step: both sides' teacher targets are the teacher's encodings of
    the batch's own images (cached inputs), so nothing but the two encoders runs. Not a registered method."""
    name = "limit"
    trains = "encoder"

    def loss(self, student, teacher, forget, retain, generator):
        terms = {}
        for side, batch in (("forget", forget), ("retain", retain)):
            with torch.no_grad():
                target = teacher.encode(batch.images, batch.mask, batch.ctx)
            terms[side] = feature_distance(student.encode(batch.images, batch.mask, batch.ctx), target)
        return terms


def _median_step_time(objective, parameters, make_batch, repeats: int) -> float:
    optimizer = make_optimizer(parameters, UnlearnConfig().optim)
    times = []
    for step in range(repeats + 2):
        batch = make_batch(step, step_generator(0, step))
        started = time.perf_counter()
        loss = objective(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:])


def _step_gflop(objective, make_batch) -> float:
    """GFLOP of one step's loss, forward and backward (FlopCounterMode's count), on the first batch."""
    from torch.utils.flop_counter import FlopCounterMode
    batch = make_batch(0, step_generator(0, 0))
    with FlopCounterMode(display=False) as counter:
        objective(batch)["loss"].backward()
    return round(counter.get_total_flops() / 1e9, 4)


def _fill_token_cache(model, images) -> None:
    """Tokens of every image, whole and degraded by TASK's mask (families without a token cache: nothing)."""
    if not hasattr(model, "visible_tokens"):
        return
    with torch.no_grad():
        for chunk in images.images.split(256):
            mask = make_mask(TASK, len(chunk), chunk.shape[-1], model.mask_grid, torch.Generator().manual_seed(0))
            model.tokenize(chunk)
            model.visible_tokens(chunk, mask)


def step_cost(model_dir: str | Path, methods=METHODS_TIMED, images: int = 64, repeats: int = 10, *,
              command: str = "", echo=print, flops_only: bool = False) -> dict:
    """The record of step times of the model in `model_dir` (see the module's docstring): a training step, the
    limit step and each of `methods`' unlearning steps, with `images` images, medians over `repeats` steps; and
    each step's counted GFLOP (`flops_only`: those alone)."""
    teacher = load_model(model_dir).requires_grad_(False)
    data = training_data_config(teacher)
    record = {"command": command, "model": str(model_dir), "family": teacher.family, "task": vars(TASK),
              "images": images, "repeats": repeats, "threads": torch.get_num_threads(),
              "versions": versions()}

    student = copy.deepcopy(teacher).requires_grad_(True)
    for module in student.frozen_modules():
        module.requires_grad_(False)
    train_config = from_dict(TrainConfig, copy.deepcopy(teacher.pretrained_info["training"]), " training")
    train_config.batch_size, train_config.tasks = images, [TASK]
    split = make_unlearn_split(data, UnlearnConfig(forget_classes=["Cat"]))   # the same images for every step timed
    train_images = split.retain_train
    _fill_token_cache(student, train_images)
    record["training_step_gflop"] = _step_gflop(TrainObjective(student).train(),
                                                image_batches(train_images, train_config, student))
    if not flops_only:
        record["training_step_s"] = _median_step_time(
            TrainObjective(student).train(), [p for p in student.parameters() if p.requires_grad],
            image_batches(train_images, train_config, student), repeats)

    record["unlearning_step_s"], record["to_training_step"] = {}, {}
    record["unlearning_step_gflop"], record["gflop_to_training_step"] = {}, {}
    half = f"{images // 2}+{images // 2}"
    _fill_token_cache(teacher, split.forget_train)
    _fill_token_cache(teacher, split.retain_train)
    for name in ("limit", *methods):
        times = {}
        for forget_batch in (images // 2,) if flops_only else (images // 2, images):   # FLOPs: the shipped batch
            config = UnlearnConfig(method="ours" if name == "limit" else name, forget_classes=["Cat"],
                                   batch_size=forget_batch, tasks=[TASK])
            unlearner = load_model(model_dir)  # not a copy of the frozen teacher: set_trainable keeps frozen parts
            unlearner.share_caches_with(teacher)   # as unlearn.py does
            method = EncoderLimit(config) if name == "limit" else get_method(name, config)
            set_trainable(unlearner, method.trains)
            if f"{forget_batch}+{forget_batch}" == half:   # the shipped knobs' batch: what a run's FLOPs scale
                record["unlearning_step_gflop"][name] = _step_gflop(
                    UnlearnObjective(method, unlearner, teacher).train(), unlearning_batches(split, config, unlearner))
                if flops_only:
                    continue
            times[f"{forget_batch}+{forget_batch}"] = round(_median_step_time(
                UnlearnObjective(method, unlearner, teacher).train(),
                [p for p in unlearner.parameters() if p.requires_grad],
                unlearning_batches(split, config, unlearner), repeats), 4)
        record["gflop_to_training_step"][name] = round(record["unlearning_step_gflop"][name]
                                                       / record["training_step_gflop"], 3)
        if flops_only:
            echo(f"{name} {record['unlearning_step_gflop'][name]} GFLOP, "
                 f"{record['gflop_to_training_step'][name]}x a training step's")
            continue
        if name == "limit":
            record["limit_step_s"], record["to_limit"] = times, {}
        else:
            record["unlearning_step_s"][name] = times
            record["to_limit"][name] = round(times[half] / record["limit_step_s"][half], 3)
        # the same images as a training step: half forget, half retain
        record["to_training_step"][name] = round(times[half] / record["training_step_s"], 3)
        echo(f"{name} {times} {record['to_training_step'][name]}x a training step")
    if flops_only:
        return {key: record[key] for key in FLOP_KEYS}
    record["training_step_s"] = round(record["training_step_s"], 4)
    return record
