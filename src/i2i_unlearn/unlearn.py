"""An unlearning run: load a model, split the data, tune a copy, save it beside the original."""
from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path

import torch

from i2i_unlearn.checkpoints import sha256_text, write_text_atomic
from i2i_unlearn.config import DataConfig, TrainConfig, UnlearnConfig, from_dict, recorded_data_config, to_dict
from i2i_unlearn.data import ImageSet, UnlearnSplit, make_unlearn_split
from i2i_unlearn.errors import UserError
from i2i_unlearn.loop import CHECKPOINTS, make_accelerator, run_loop
from i2i_unlearn.methods import UnlearnObjective, get_method
from i2i_unlearn.methods.base import set_trainable
from i2i_unlearn.models import I2IModel, load_model
from i2i_unlearn.runs import prepare_output_dir, run_record, write_run_record
from i2i_unlearn.tasks import NOISE_TYPES, check_task, make_mask, noise_image, pick

UNLEARN_LOG = "unlearn_log.jsonl"


def training_data_config(model: I2IModel) -> DataConfig:
    """The data config a model was trained with (recorded by `train`)."""
    recorded = getattr(model, "pretrained_info", {}).get("training")
    if not recorded:
        raise UserError("the model records no training data config: pass the dataset explicitly (--dataset)")
    return recorded_data_config(recorded["data"])


def input_folders(*inputs) -> list[Path]:
    """Folders a run reads and must never write into, delete or contain: model dirs and data roots."""
    folders = []
    for item in inputs:
        if isinstance(item, DataConfig):
            item = item.root
        if item is not None:
            folders.append(Path(item))
    return folders


def training_config(model: I2IModel) -> TrainConfig:
    """The whole recipe a model was trained with, its split as recorded."""
    return from_dict(TrainConfig, {**model.pretrained_info["training"], "data": to_dict(training_data_config(model))},
                     " training")


def default_retain_classes(model: I2IModel, forget_classes: list[str]) -> list[str] | None:
    """A model trained on some classes only (e.g. Cat and Dog) retains those, minus the forgotten
    ones; None for a model trained on every class of its dataset."""
    trained = (getattr(model, "pretrained_info", {}).get("training") or {}).get("classes")
    if not trained:
        return None
    known = {name.lower() for name in trained}
    never_seen = [name for name in forget_classes if name.lower() not in known]
    if never_seen:
        raise UserError(f"the model was never trained on {', '.join(never_seen)}; its classes: {', '.join(trained)}")
    forgotten = {name.lower() for name in forget_classes}
    return [name for name in trained if name.lower() not in forgotten]


def check_config(config: UnlearnConfig) -> None:
    get_method(config.method, config)
    if config.alpha < 0:
        raise UserError(f"alpha must be >= 0, got {config.alpha}")
    if config.noise not in NOISE_TYPES:
        raise UserError(f"unknown noise type {config.noise!r}; available: {', '.join(NOISE_TYPES)}")
    if config.steps <= 0 or config.batch_size <= 0 or (config.retain_batch_size or 1) <= 0:
        raise UserError("steps, batch_size and retain_batch_size must be positive")
    for task in config.tasks:
        check_task(task)
    if not config.forget_classes and not config.forget_files:
        raise UserError("the forget set is empty: name forget classes (--forget-classes) or a forget file list")


def unlearning_batches(split: UnlearnSplit, config: UnlearnConfig, model: I2IModel):
    """make_batch for the loop: a forget and a retain batch under one drawn task."""
    forget, retain = split.forget_train, split.retain_train
    sizes = {"forget": config.batch_size, "retain": config.retain_batch_size or config.batch_size}

    def make_batch(step: int, generator: torch.Generator) -> dict:
        task = pick(config.tasks, generator)
        batch = {"generator": generator}
        for side, images in (("forget", forget), ("retain", retain)):
            index = torch.randint(len(images), (sizes[side],), generator=generator)
            x = images.images[index]
            batch[f"{side}_images"] = x
            batch[f"{side}_mask"] = make_mask(task, len(x), x.shape[-1], model.mask_grid, generator)
        batch["forget_noise"] = noise_image(batch["forget_images"], config.noise, generator)
        return batch
    return make_batch


def _ids_hash(images: ImageSet) -> str:
    return sha256_text("\n".join(images.ids))


def unlearn(model_dir: str | Path, config: UnlearnConfig, out_dir: str | Path, *, resume: bool = False,
            overwrite: bool = False, data: DataConfig | None = None, data_root: str | None = None,
            keep_checkpoint: bool = False) -> I2IModel:
    """Make the model in `model_dir` forget; the result goes to `out_dir` (never to model_dir).

    `keep_checkpoint` leaves the last checkpoint in out_dir, so a longer run can `resume` from it
    (benchmarks/tune.py continues a short trial that way)."""
    started = time.time()
    check_config(config)
    teacher = load_model(model_dir)
    data = data or training_data_config(teacher)
    if data_root is not None:
        data.root = data_root
    if config.proxy is not None:  # a proxy set must be shaped like the model's data
        config.proxy.image_size, config.proxy.channels = data.image_size, data.channels
    if config.retain_classes is None and config.proxy is None:
        config.retain_classes = default_retain_classes(teacher, config.forget_classes)
    split = make_unlearn_split(data, config)
    out_dir = prepare_output_dir(out_dir, overwrite=overwrite, resume=resume, protected=input_folders(model_dir, data))
    inputs = {"model_dir": str(model_dir), "model_weights_sha256": teacher.pretrained_info["weights_sha256"],
              "dataset": split.forget_train.name, "forget_ids_sha256": _ids_hash(split.forget_train),
              "retain_ids_sha256": _ids_hash(split.retain_train), "forget_count": len(split.forget_train),
              "retain_count": len(split.retain_train), "forget_classes": split.forget_class_names,
              "split": split.parts}
    method = get_method(config.method, config)

    if method.name == "retrain":
        from i2i_unlearn.train import train
        recipe = training_config(teacher)
        recipe.data = data
        recipe.seed = config.seed
        model = train(recipe, out_dir, resume=resume, overwrite=True, train_images=split.retain_train,
                      kind="retrain", extra_inputs=inputs)
        _annotate(out_dir, config, inputs, teacher)
        return model

    student = copy.deepcopy(teacher)
    teacher.eval().requires_grad_(False)
    set_trainable(student, method.trains)
    accelerator = make_accelerator()
    log = run_loop(objective=UnlearnObjective(method, student, teacher), module=student, optim=config.optim,
                   steps=config.steps, seed=config.seed, make_batch=unlearning_batches(split, config, student),
                   run_dir=out_dir, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                   resume=resume, description=f"unlearn {method.name}", accelerator=accelerator,
                   config=to_dict(config))
    if accelerator.is_main_process:
        student.save_pretrained(out_dir, extra=_lineage(config, inputs, teacher))
        write_text_atomic(out_dir / UNLEARN_LOG, "".join(json.dumps(e) + "\n" for e in log))
        write_run_record(out_dir, run_record("unlearn", to_dict(config), inputs, started, data=to_dict(data)))
        if not keep_checkpoint:
            shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)
    return student


def _lineage(config: UnlearnConfig, inputs: dict, teacher: I2IModel) -> dict:
    """What an unlearned model's config.json says about where it comes from."""
    return {"training": teacher.pretrained_info.get("training"), "dataset": teacher.pretrained_info.get("dataset"),
            "class_names": teacher.pretrained_info.get("class_names"),
            "unlearning": {"config": to_dict(config), "forget_classes": inputs["forget_classes"],
                           "parent_weights_sha256": inputs["model_weights_sha256"]}}


def _annotate(out_dir: Path, config: UnlearnConfig, inputs: dict, teacher: I2IModel) -> None:
    """Add the unlearning lineage to a retrained model's config.json (its hash stays valid)."""
    path = Path(out_dir) / "config.json"
    info = json.loads(path.read_text())
    info["unlearning"] = _lineage(config, inputs, teacher)["unlearning"]
    write_text_atomic(path, json.dumps(info, indent=2) + "\n")
