"""Training a model family from scratch: `i2i-unlearn train` and the `retrain` baseline."""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import torch
from torch import nn

from i2i_unlearn.checkpoints import CHECKPOINTS, write_text_atomic
from i2i_unlearn.config import TaskConfig, TrainConfig, to_dict
from i2i_unlearn.data import FolderImages, ImageSource, open_split, select_classes
from i2i_unlearn.data.file_hashes import FILE_HASHES, FileHashes
from i2i_unlearn.data.hf_dataset import HFDatasetImages
from i2i_unlearn.distributed import WHOLE, on_main_process
from i2i_unlearn.errors import UserError
from i2i_unlearn.loop import check_global_batch, make_accelerator, resumed_wall_time, run_loop
from i2i_unlearn.model_card import write_model_card
from i2i_unlearn.models import I2IModel, build_model
from i2i_unlearn.models.generation import GENERATION_BATCH, generate_batches, hidden_error_sums
from i2i_unlearn.runs import prepare_output_dir, run_record, write_run_record
from i2i_unlearn.tasks import check_task, degrade, make_mask, pick

TRAIN_LOG = "train_log.jsonl"
CHECK_TASK = {"name": "center-inpaint", "ratio": 0.5}   # the task every evaluation reports
LEARNED_RATIO = 0.75   # a model whose hole error is above this share of the mean fill's has not clearly learned


class TrainObjective(nn.Module):
    """The family's own loss on a batch of images under a sampled task: the randomness is drawn for
    the step's global batch, then this process's rows are kept (`batch["shard"]`)."""

    def __init__(self, model: I2IModel):
        super().__init__()
        self.model = model

    def forward(self, batch):
        device = next(self.model.parameters()).device
        images, mask = batch["images"].to(device), batch["mask"].to(device)
        ctx = self.model.sample_context(images, mask, batch["generator"])
        shard, n = batch.get("shard", WHOLE), len(images)
        images, mask, ctx = shard.take((images, mask, {**ctx, "shard": shard}), n)
        return {"loss": self.model.training_loss(images, mask, ctx)}


def image_batches(images: ImageSource, config, model: I2IModel):
    """make_batch for the loop: a random batch and one task drawn from config.tasks."""
    for task in config.tasks:
        check_task(task)

    def make_batch(step: int, generator: torch.Generator) -> dict:
        index = torch.randperm(len(images), generator=generator)[:config.batch_size]
        task = pick(config.tasks, generator)
        x = images.load(index)   # only the batch is read (an image folder streams from disk)
        mask = make_mask(task, len(index), x.shape[-1], model.mask_grid, generator)
        return {"images": x, "mask": mask, "generator": generator}
    return make_batch


def train(config: TrainConfig, out_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
          train_images: ImageSource | None = None, kind: str = "train", extra_inputs: dict | None = None) -> I2IModel:
    """Train a fresh model on `config.data`'s train split (or `train_images`) and save it to out_dir."""
    started = time.time()
    accelerator = make_accelerator(config.mixed_precision)
    check_global_batch(accelerator, batch_size=config.batch_size)
    out_dir = prepare_output_dir(out_dir, overwrite=overwrite, resume=resume)
    earlier_wall_time = resumed_wall_time(out_dir) if resume else 0.0
    split = open_split(config.data)   # an image folder's parts stay on disk
    if train_images is None:
        train_images = select_classes(split.train, config.classes)
        extra_inputs = {"split": split.describe(), **(extra_inputs or {})}
    # validation images of the classes trained on (`retrain` and class subsets see fewer)
    val_images = select_classes(split.val, sorted({train_images.class_names[i] for i in train_images.labels.tolist()}))
    if len(train_images) == 0:
        raise UserError("no training images")
    torch.manual_seed(config.seed)  # the initial weights
    model = build_model(config.model)
    if config.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    if tuple(train_images.image_shape) != model.image_shape:
        raise UserError(f"images are {tuple(train_images.image_shape)} but the model expects {model.image_shape}")
    log = run_loop(objective=TrainObjective(model), module=model, optim=config.optim, steps=config.steps,
                   seed=config.seed, make_batch=image_batches(train_images, config, model), run_dir=out_dir,
                   checkpoint_every=config.checkpoint_every, log_every=config.log_every, resume=resume,
                   description=f"train {model.family}", accelerator=accelerator, ema_decay=config.ema_decay,
                   config=to_dict(config), started=started, mixed_precision=config.mixed_precision,
                   data_workers=config.data_workers or 0)
    on_main_process(lambda: save_trained(model, out_dir, kind, config, train_images, log, started, extra_inputs,
                                         validation_check(model.eval(), val_images, train_images),
                                         world_size=accelerator.num_processes, earlier_wall_time_s=earlier_wall_time))
    return model


def validation_check(model: I2IModel, val_images: ImageSource, train_images: ImageSource) -> dict | None:
    """Did training learn anything? The hole error (center 1/2) on validation images against the
    mean-image fill, which a model stuck on a plateau does no better than. Read batch by batch."""
    if len(val_images) == 0:
        return None
    task = TaskConfig(**CHECK_TASK)
    mean_image = train_images.mean_image()
    model_sums, fill_sums = [0.0, 0.0], [0.0, 0.0]
    images = (batch.images for batch in val_images.batches(GENERATION_BATCH))
    for truth, outputs, masks in generate_batches(model, images, task, total=len(val_images),
                                                  description="validation check"):
        for sums, filled in ((model_sums, outputs), (fill_sums, degrade(truth, masks, mean_image))):
            error, count = hidden_error_sums(filled, truth, masks)
            sums[0] += error
            sums[1] += count
    model_mse, fill_mse = model_sums[0] / model_sums[1], fill_sums[0] / fill_sums[1]
    return verdict({"task": CHECK_TASK, "count": len(val_images), "hidden_mse": round(model_mse, 5),
                     "mean_fill_hidden_mse": round(fill_mse, 5)}, model_mse, fill_mse, "hole error")


def verdict(check: dict, model_error: float, fill_error: float, what: str) -> dict:
    ratio = model_error / fill_error if fill_error > 0 else float("inf")
    check.update(ratio_to_mean_fill=round(ratio, 4), learned=ratio <= LEARNED_RATIO)
    if not check["learned"]:
        print(f"\n{'!' * 78}\nWARNING: this model has not clearly learned: its validation {what} is "
              f"{ratio:.2f}x the mean-image fill's ({model_error:.4f} vs {fill_error:.4f}; a useful model is below "
              f"{LEARNED_RATIO}x).\nThe loss may be on a plateau: train longer, or lower the learning rate; see "
              f"train_log.jsonl.\n{'!' * 78}", file=sys.stderr, flush=True)
    return check


def input_hash(images: ImageSource, out_dir: Path) -> dict:
    """The recorded hash of a run's input images: an in-memory set's pixel hash (as every shipped record holds), or
    a folder's (or a Hugging Face dataset's) hash of its files, each file hashed once and cached beside the run."""
    if isinstance(images, (FolderImages, HFDatasetImages)):
        return {"train_images": images.content_hash(FileHashes(out_dir / FILE_HASHES)), "train_images_hash": "files"}
    return {"train_images": images.content_hash()}


def save_trained(model, out_dir: Path, kind: str, config, train_images: ImageSource, log: list[dict], started: float,
                 extra_inputs: dict | None = None, validation: dict | None = None, world_size: int = 1,
                 earlier_wall_time_s: float = 0.0) -> None:
    """The end of a training run: weights + config.json (with the recipe), log, run record (with
    the validation check and the number of processes), the README.md model card; the checkpoints go."""
    record = run_record(kind, to_dict(config), {**input_hash(train_images, out_dir),
                                                "train_count": len(train_images), **(extra_inputs or {})},
                        started, earlier_wall_time_s, steps=config.steps, validation_check=validation,
                        world_size=world_size)
    model.save_pretrained(out_dir, extra={"training": to_dict(config), "dataset": train_images.name,
                                          "class_names": train_images.class_names})
    write_text_atomic(out_dir / TRAIN_LOG, "".join(json.dumps(e) + "\n" for e in log))
    write_run_record(out_dir, record)
    write_model_card(out_dir)
    shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)
