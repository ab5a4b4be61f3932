"""Training a model family from scratch: `i2i-unlearn train` and the `retrain` baseline."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch
from torch import nn

from i2i_unlearn.checkpoints import write_text_atomic
from i2i_unlearn.config import TrainConfig, to_dict
from i2i_unlearn.data import ImageSet, load_split
from i2i_unlearn.errors import UserError
from i2i_unlearn.loop import CHECKPOINTS, make_accelerator, run_loop
from i2i_unlearn.models import I2IModel, build_model
from i2i_unlearn.runs import prepare_output_dir, run_record, write_run_record
from i2i_unlearn.tasks import check_task, make_mask, pick

TRAIN_LOG = "train_log.jsonl"


class TrainObjective(nn.Module):
    """The family's own loss on a batch of images under a sampled task."""

    def __init__(self, model: I2IModel):
        super().__init__()
        self.model = model

    def forward(self, batch):
        device = next(self.model.parameters()).device
        images, mask = batch["images"].to(device), batch["mask"].to(device)
        ctx = self.model.sample_context(images, mask, batch["generator"])
        return {"loss": self.model.training_loss(images, mask, ctx)}


def image_batches(images: ImageSet, config, model: I2IModel):
    """make_batch for the loop: a random batch and one task drawn from config.tasks."""
    for task in config.tasks:
        check_task(task)

    def make_batch(step: int, generator: torch.Generator) -> dict:
        index = torch.randperm(len(images), generator=generator)[:config.batch_size]
        task = pick(config.tasks, generator)
        x = images.images[index]
        mask = make_mask(task, len(index), x.shape[-1], model.mask_grid, generator)
        return {"images": x, "mask": mask, "generator": generator}
    return make_batch


def select_classes(images: ImageSet, classes: list[str] | None) -> ImageSet:
    if not classes:
        return images
    keep = torch.isin(images.labels, torch.tensor(images.class_indices(classes)))
    return images.subset(torch.nonzero(keep).flatten())


def train(config: TrainConfig, out_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
          train_images: ImageSet | None = None, kind: str = "train", extra_inputs: dict | None = None) -> I2IModel:
    """Train a fresh model on `config.data`'s train split (or `train_images`) and save it to out_dir."""
    started = time.time()
    out_dir = prepare_output_dir(out_dir, overwrite=overwrite, resume=resume)
    if train_images is None:
        split = load_split(config.data)
        train_images = select_classes(split.train, config.classes)
        extra_inputs = {"split": split.describe(), **(extra_inputs or {})}
    if len(train_images) == 0:
        raise UserError("no training images")
    torch.manual_seed(config.seed)  # the initial weights
    model = build_model(config.model)
    if tuple(train_images.images.shape[1:]) != model.image_shape:
        raise UserError(f"images are {tuple(train_images.images.shape[1:])} but the model expects {model.image_shape}")
    accelerator = make_accelerator()
    log = run_loop(objective=TrainObjective(model), module=model, optim=config.optim, steps=config.steps,
                   seed=config.seed, make_batch=image_batches(train_images, config, model), run_dir=out_dir,
                   checkpoint_every=config.checkpoint_every, log_every=config.log_every, resume=resume,
                   description=f"train {model.family}", accelerator=accelerator, ema_decay=config.ema_decay)
    if accelerator.is_main_process:
        save_trained(model, out_dir, kind, config, train_images, log, started, extra_inputs)
    return model


def save_trained(model, out_dir: Path, kind: str, config, train_images: ImageSet, log: list[dict], started: float,
                 extra_inputs: dict | None = None) -> None:
    """The end of a training run: weights + config.json (with the recipe), log, run record; the
    checkpoints go."""
    record = run_record(kind, to_dict(config), {"train_images": train_images.content_hash(),
                                                "train_count": len(train_images), **(extra_inputs or {})},
                        started, steps=config.steps)
    model.save_pretrained(out_dir, extra={"training": to_dict(config), "dataset": train_images.name,
                                          "class_names": train_images.class_names})
    write_text_atomic(out_dir / TRAIN_LOG, "".join(json.dumps(e) + "\n" for e in log))
    write_run_record(out_dir, record)
    shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)
