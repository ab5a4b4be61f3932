"""An unlearning run: load a model, split the data, tune a copy, save it beside the original."""
from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from i2i_unlearn.checkpoints import CHECKPOINTS, sha256_text, write_text_atomic
from i2i_unlearn.config import DataConfig, TaskConfig, UnlearnConfig, to_dict
from i2i_unlearn.controllers.budget import BudgetController, check_budget
from i2i_unlearn.controllers.validation import ValidationProbe
from i2i_unlearn.controllers.membership import MembershipProbe, MembershipStop, check_membership_stop
from i2i_unlearn.data import ImageSource, UnlearnSplit, make_unlearn_split
from i2i_unlearn.data.proxy import check_proxy
from i2i_unlearn.data.proxy import uses_proxy
from i2i_unlearn.distributed import on_main_process
from i2i_unlearn.errors import UserError
from i2i_unlearn.lineage import (
    FORGOTTEN_IDS,
    check_not_retaining_forgotten,
    default_retain_classes,
    forgotten_id_hashes,
    input_folders,
    training_config,
    training_data_config,
)
from i2i_unlearn.loop import check_global_batch, make_accelerator, resumed_wall_time, run_loop
from i2i_unlearn.methods import UnlearnObjective, get_method
from i2i_unlearn.methods.base import set_trainable
from i2i_unlearn.model_card import write_model_card
from i2i_unlearn.models import I2IModel, load_model
from i2i_unlearn.models.generation import generate_outputs, hidden_mse
from i2i_unlearn.runs import (
    RUN_RECORD,
    forgotten_classes,
    prepare_output_dir,
    run_record,
    unlearning_history,
    write_run_record,
)
from i2i_unlearn.tasks import NOISE_TYPES, check_task, make_mask, noise_image, pick
from i2i_unlearn.train import CHECK_TASK, train

UNLEARN_LOG = "unlearn_log.jsonl"
CHECK_IMAGES = 128   # validation images per side in the retain check: a steady mean, cheap even for diffusion


def check_config(config: UnlearnConfig) -> None:
    get_method(config.method, config)
    if config.alpha < 0:
        raise UserError(f"alpha must be >= 0, got {config.alpha}")
    if config.noise not in NOISE_TYPES:
        raise UserError(f"unknown noise type {config.noise!r}; available: {', '.join(NOISE_TYPES)}")
    if config.noise_context not in (None, "noise"):
        raise UserError(f"unknown noise_context {config.noise_context!r}; available: noise (or leave it unset)")
    if config.noise_context and config.method != "ours":
        raise UserError(f"noise_context sets the forget target of ours; method {config.method} has its own target")
    if config.steps <= 0 or config.batch_size <= 0 or (config.retain_batch_size or 1) <= 0:
        raise UserError("steps, batch_size and retain_batch_size must be positive")
    for task in config.tasks:
        check_task(task)
    if not config.forget_classes and not config.forget_files:
        raise UserError("the forget set is empty: name forget classes (--forget-classes) or a forget file list")
    if config.forget_classes and config.forget_files:
        raise UserError("give forget classes (--forget-classes) or a forget file list (--forget-files), not both: to "
                        "forget both, run one request, then the other on its result")
    check_budget(config)
    check_membership_stop(config)
    check_proxy(config)


def validation_probe(config: UnlearnConfig, split: UnlearnSplit, data: DataConfig) -> ValidationProbe:
    """The budget's validation sample. With a proxy retain set its retain side is the proxy's own validation images
    as proxy.py built them (transformed, or completed by the original, like the training proxy): handed to the
    probe as the split's retain images, since validation.retain_validation reloads only a plain proxy dataset."""
    if split.proxy_val is None:
        return ValidationProbe(config, split, data)
    probe = ValidationProbe(dataclasses.replace(config, proxy=None, proxy_classes=None),
                            dataclasses.replace(split, retain_eval=split.proxy_val), data)
    probe.retain_source = split.proxy_val_source
    return probe


def unlearning_batches(split: UnlearnSplit, config: UnlearnConfig, model: I2IModel):
    """make_batch for the loop: a forget and a retain batch under one drawn task. The global batch,
    the same on every process (each keeps its rows): the noise image's statistics are the global batch's."""
    forget, retain = split.forget_train, split.retain_train
    sizes = {"forget": config.batch_size, "retain": config.retain_batch_size or config.batch_size}

    def make_batch(step: int, generator: torch.Generator) -> dict:
        task = pick(config.tasks, generator)
        batch = {"generator": generator}
        for side, images in (("forget", forget), ("retain", retain)):
            index = torch.randint(len(images), (sizes[side],), generator=generator)
            x = images.load(index)   # only the batch is read
            batch[f"{side}_images"] = x
            batch[f"{side}_mask"] = make_mask(task, len(x), x.shape[-1], model.mask_grid, generator)
        batch["forget_noise"] = noise_image(batch["forget_images"], config.noise, generator)
        return batch
    return make_batch


def _ids_hash(images: ImageSource) -> str:
    return sha256_text("\n".join(images.ids))


def unlearn(model_dir: str | Path, config: UnlearnConfig, out_dir: str | Path, *, resume: bool = False,
            overwrite: bool = False, data: DataConfig | None = None, data_root: str | None = None,
            keep_checkpoint: bool = False, warm_start: str | Path | None = None) -> I2IModel:
    """Make the model in `model_dir` forget; the result goes to `out_dir` (never to model_dir).

    `keep_checkpoint` leaves the last checkpoint in out_dir, so a longer run can `resume` from it
    (bench/tune.py continues a short trial that way).
    With `config.retain_budget` the run is budgeted (controllers/budget.py): alpha is controlled on validation images and
    the run ends on its best checkpoint. `warm_start`: a model folder (an earlier result of the same request)
    whose weights the student starts from, instead of the original's; the original stays the teacher."""
    started = time.time()
    check_config(config)
    accelerator = make_accelerator(config.mixed_precision)
    if config.method != "retrain":   # retrain checks its own batch
        check_global_batch(accelerator, batch_size=config.batch_size, retain_batch_size=config.retain_batch_size)
    teacher = load_model(model_dir)
    data = data or training_data_config(teacher)
    if data_root is not None:
        data.root = data_root
    if config.proxy is not None:  # a proxy set must be shaped like the model's data
        config.proxy.image_size, config.proxy.channels = data.image_size, data.channels
    if config.retain_classes is None and not uses_proxy(config):
        config.retain_classes = default_retain_classes(teacher, config.forget_classes)
    check_not_retaining_forgotten(teacher, config.retain_classes)
    earlier_forgotten_ids = forgotten_id_hashes(model_dir, teacher)
    # held-out twins from validation: the retain check after the run scores on them
    # a proxy of the model's own outputs is made by the teacher here, once, before training
    split = make_unlearn_split(data, config, "val", forgotten_id_hashes=earlier_forgotten_ids, teacher=teacher,
                               proxy_val=config.retain_budget is not None,
                               forgotten_classes=forgotten_classes(teacher.pretrained_info))
    probe = validation_probe(config, split, data) if config.retain_budget is not None else None
    out_dir = prepare_output_dir(out_dir, overwrite=overwrite, resume=resume, protected=input_folders(model_dir, data))
    forgotten_ids = earlier_forgotten_ids | (frozenset(sha256_text(i) for i in split.forget_train.ids)
                                             if config.forget_files else frozenset())
    inputs = {"model_dir": str(model_dir), "model_weights_sha256": teacher.pretrained_info["weights_sha256"],
              "dataset": split.forget_train.name, "forget_ids_sha256": _ids_hash(split.forget_train),
              "retain_ids_sha256": _ids_hash(split.retain_train), "forget_count": len(split.forget_train),
              "retain_count": len(split.retain_train), "forget_classes": split.forget_class_names,
              "split": split.parts}
    if split.proxy is not None:   # what stood in for the retain set (its options are in the config)
        inputs["proxy"] = split.proxy
    method = get_method(config.method, config)

    if method.name == "retrain":
        recipe = training_config(teacher)
        recipe.data = data
        recipe.seed = config.seed
        recipe.mixed_precision, recipe.gradient_checkpointing = config.mixed_precision, config.gradient_checkpointing
        recipe.data_workers = config.data_workers
        model = train(recipe, out_dir, resume=resume, overwrite=True, train_images=split.retain_train,
                      kind="retrain", extra_inputs=inputs)
        def finish_retrain() -> None:
            lineage = _lineage(config, inputs, teacher, retain_check(model, teacher, split))
            _annotate(out_dir, lineage)
            _write_forgotten_ids(out_dir, forgotten_ids)
            write_model_card(out_dir)
        on_main_process(finish_retrain)
        return model

    earlier_wall_time = resumed_wall_time(out_dir) if resume else 0.0
    student = copy.deepcopy(teacher)
    student.share_caches_with(teacher)
    if config.gradient_checkpointing:
        student.enable_gradient_checkpointing()
    if warm_start is not None:
        start_model = load_model(warm_start)
        student.load_state_dict(start_model.state_dict())
        inputs["warm_start"] = {"dir": str(warm_start), "weights_sha256": start_model.pretrained_info["weights_sha256"]}
    teacher.eval().requires_grad_(False)
    set_trainable(student, method.trains)
    if not resume:
        method.prepare_student(student)
    controller = None
    if probe is not None:
        # the controller turns the method's alpha; the run's config keeps the alpha it was given
        method.config = dataclasses.replace(config)
        controller = BudgetController(config, method, probe, out_dir, warm_started=warm_start is not None)
        if not resume:   # a resumed run gets the controller's state from its checkpoint
            controller.start(teacher, student)
    elif config.stop_at_auc is not None:
        controller = MembershipStop(config, MembershipProbe(split), out_dir)
        if not resume:
            controller.start(student)
    log = run_loop(objective=UnlearnObjective(method, student, teacher), module=student, optim=config.optim,
                   steps=config.steps, seed=config.seed, make_batch=unlearning_batches(split, config, student),
                   run_dir=out_dir, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                   resume=resume, description=f"unlearn {method.name}", accelerator=accelerator,
                   config=to_dict(config), started=started, monitor=controller,
                   mixed_precision=config.mixed_precision, data_workers=config.data_workers or 0)
    record = {}
    if isinstance(controller, BudgetController):
        controller.roll_back(student)   # every process: each returns the kept model
        record = {"budget": controller.record(earlier_wall_time + time.time() - started)}
    elif controller is not None:
        controller.roll_back(student)
        record = {"membership_stop": controller.record()}

    def finish() -> None:   # the main process writes the output folder; the others wait
        lineage = _lineage(config, inputs, teacher, retain_check(student, teacher, split),
                           {next(iter(record)): controller.summary()} if controller else None)
        student.save_pretrained(out_dir, extra=lineage)
        _write_forgotten_ids(out_dir, forgotten_ids)
        write_text_atomic(out_dir / UNLEARN_LOG, "".join(json.dumps(e) + "\n" for e in log))
        write_run_record(out_dir, run_record("unlearn", to_dict(config), inputs, started, earlier_wall_time,
                                             data=to_dict(data),
                                             retain_check=lineage["unlearning"]["retain_check"],
                                             world_size=accelerator.num_processes, **record))
        write_model_card(out_dir)
        if not keep_checkpoint:
            shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)
        if isinstance(controller, BudgetController):
            print("\n".join(controller.closing_lines(record["budget"])), file=sys.stderr, flush=True)
        elif controller is not None:
            print(f"membership: {controller.message()}", file=sys.stderr, flush=True)
    on_main_process(finish)
    return student


@torch.no_grad()
def retain_check(model: I2IModel, teacher: I2IModel, split: UnlearnSplit) -> dict | None:
    """The request's cost and effect on held-out images, beside the model it started from: the hole
    error (center 1/2) on validation images of the retained classes (should stay) and of the
    forgotten ones (should rise). Recorded in every step of the lineage chain."""
    task = TaskConfig(**CHECK_TASK)
    check = {"task": CHECK_TASK, "split": split.eval_split}
    for side, images in (("retain", split.retain_eval), ("forget", split.forget_eval)):
        if len(images) == 0:
            check[side] = None
            continue
        pick_evenly = torch.linspace(0, len(images) - 1, min(len(images), CHECK_IMAGES)).round().long()
        truth = images.load(pick_evenly)
        errors = []
        for scored, which in ((model, "result"), (teacher, "original")):
            outputs, masks = generate_outputs(scored, truth, task,
                                              description=f"retain check: {side} validation images, the {which}")
            errors.append(hidden_mse(outputs, truth, masks))
        check[side] = {"count": len(truth), "hidden_mse": round(errors[0], 5), "before_hidden_mse": round(errors[1], 5),
                       "ratio_to_before": round(errors[0] / errors[1], 4) if errors[1] > 0 else None}
    return check if check["retain"] or check["forget"] else None


def _lineage(config: UnlearnConfig, inputs: dict, teacher: I2IModel, check: dict | None,
             control: dict | None = None) -> dict:
    """What an unlearned model's config.json says about where it comes from: the teacher's records
    (its training recipe, an import's source), this request, and the chain of every request so far,
    oldest first, the last being this one. Nothing earlier is dropped."""
    inherited = {key: value for key, value in teacher.pretrained_info.items()
                 if key not in ("family", "model", "weights_sha256", "unlearning", "unlearning_history")}
    step = {"method": config.method, "config": to_dict(config), "forget_classes": inputs["forget_classes"],
            "parent_dir": inputs["model_dir"], "parent_weights_sha256": inputs["model_weights_sha256"],
            **{key: inputs[key] for key in ("forget_ids_sha256", "retain_ids_sha256", "forget_count", "retain_count")},
            "retain_check": check}
    if control is not None:   # {"budget": ...} or {"membership_stop": ...}: what controlled the run
        step.update(control)
    return {**inherited, "unlearning": step, "unlearning_history": [*unlearning_history(teacher.pretrained_info), step]}


def _annotate(out_dir: Path, lineage: dict) -> None:
    """Add the unlearning lineage to a retrained model's config.json (its hash stays valid) and the
    retain check to its run record."""
    path = Path(out_dir) / "config.json"
    info = json.loads(path.read_text())
    info.update(unlearning=lineage["unlearning"], unlearning_history=lineage["unlearning_history"])
    write_text_atomic(path, json.dumps(info, indent=2) + "\n")
    record = json.loads((Path(out_dir) / RUN_RECORD).read_text())
    write_run_record(out_dir, {**record, "retain_check": lineage["unlearning"]["retain_check"]})


def _write_forgotten_ids(out_dir: Path, hashes: frozenset[str]) -> None:
    if hashes:
        write_text_atomic(Path(out_dir) / FORGOTTEN_IDS, "".join(f"{digest}\n" for digest in sorted(hashes)))
