"""`unlearn`: make a model forget a class or a list of images."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer

from i2i_unlearn.cli.app import DEFAULT_EVALUATOR, _names, _number, _once, _saved, app
from i2i_unlearn.config import (
    DataConfig,
    UnlearnConfig,
    load_yaml,
    with_overrides,
)
from i2i_unlearn.errors import UserError


@app.command()
def unlearn(model: Path = typer.Option(..., help="model directory (left untouched)"),
            out: Path = typer.Option(..., help="directory for the unlearned model"),
            method: Optional[str] = typer.Option(None, help="see `i2i-unlearn list methods` (default: the config's, "
                                                           "else ours)"),
            forget_classes: Optional[list[str]] = typer.Option(None, help="class names to forget (comma-separated or repeated)"),
            forget_files: Optional[Path] = typer.Option(None, help="text file of image ids to forget, one per line"),
            retain_classes: Optional[list[str]] = typer.Option(None, help="retain only these classes (default: all others)"),
            retain_size: Optional[int] = typer.Option(None, help="sample this many retain images"),
            retain_ratio: Optional[float] = typer.Option(None, help="retain images per forget image"),
            proxy_dataset: Optional[str] = typer.Option(None, help="use this dataset as a proxy retain set"),
            proxy_root: Optional[Path] = typer.Option(None, help="folder of the proxy dataset"),
            proxy_classes: Optional[list[str]] = typer.Option(None, help="classes of the proxy dataset to use"),
            proxy_transform: Optional[list[str]] = typer.Option(None, help="transform the proxy images toward the "
                                                                          "model's domain, in order (comma-separated "
                                                                          "or repeated): binarize (white-on-black "
                                                                          "silhouettes), augment (random flip, "
                                                                          "rotation, scaling, shift); docs/proxy.md"),
            proxy_teacher: Optional[str] = typer.Option(None, help="the proxy is the original model's own "
                                                                  "completions of mostly hidden inputs: proxy (the "
                                                                  "--proxy-dataset images) or noise (no dataset "
                                                                  "needed); docs/proxy.md"),
            proxy_teacher_images: Optional[int] = typer.Option(None, help="--proxy-teacher: images generated once "
                                                                         "before training (default 1000; diffusion "
                                                                         "and vqgan generate slowly)"),
            proxy_teacher_task: Optional[str] = typer.Option(None, help="--proxy-teacher: what is hidden of each "
                                                                       "input, center-inpaint | outpaint | "
                                                                       "random-patches (default)"),
            proxy_teacher_ratio: Optional[float] = typer.Option(None, help="--proxy-teacher: its ratio (default "
                                                                          "0.75 of the patches hidden)"),
            proxy_teacher_noise: Optional[str] = typer.Option(None, help="--proxy-teacher noise: uniform (default) | "
                                                                        "standard-gaussian"),
            alpha: Optional[float] = typer.Option(None, help="weight of the forget term, fixed (without it, --config, "
                                                             "--retain-budget or --front the run is budgeted: retain "
                                                             "FID at most 1.15x the original's, docs/budget.md)"),
            lr: Optional[float] = typer.Option(None, help="learning rate"),
            steps: Optional[int] = typer.Option(None, help="optimisation steps"),
            checkpoint_every: Optional[int] = typer.Option(None, help="steps between checkpoints (a budgeted run or a "
                                                                     "membership stop also measures there)"),
            batch_size: Optional[int] = typer.Option(None, help="forget images per step"),
            retain_batch_size: Optional[int] = typer.Option(None, help="retain images per step (default: batch size)"),
            noise: Optional[str] = typer.Option(None, help="batch-gaussian | standard-gaussian | uniform"),
            feature_norm: Optional[str] = typer.Option(None, help="none | teacher-variance"),
            noise_context: Optional[str] = typer.Option(None, help="ours on diffusion: noise (the paper's T(n): noise "
                                                                  "around the hole too) instead of the released "
                                                                  "code's forget-image context"),
            seed: Optional[int] = typer.Option(None, help="seed of every random choice"),
            retain_budget: Optional[str] = typer.Option(None, help="budgeted run: the retain score on validation "
                                                                  "images may grow to this multiple of the original's "
                                                                  "(e.g. 1.10); alpha is then controlled "
                                                                  "(docs/budget.md)"),
            forget_goal: Optional[str] = typer.Option(None, help="budgeted run: stop once the forget score is this "
                                                                "multiple of the original's (e.g. 0.33), or max: as "
                                                                "far as the budget allows (default)"),
            budget_metric: Optional[str] = typer.Option(None, help="budgeted run: the retain score, fid (through "
                                                                  "--evaluator, default) or hole-mse (no evaluator)"),
            forget_metric: Optional[str] = typer.Option(None, help="budgeted run: the forget score, recognition "
                                                                  "(through --evaluator) or hole-mse"),
            evaluator: Optional[str] = typer.Option(None, help="budgeted run: the evaluator directory (or clip:/dir, "
                                                              f"hf:/dir); default {DEFAULT_EVALUATOR}"),
            front: Optional[str] = typer.Option(None, help="one budgeted model per budget, e.g. 1.02,1.05,1.10, in "
                                                          "--out/budget-<b>/, with front.json and front.png"),
            stop_at_auc: Optional[float] = typer.Option(None, help="file request: stop once the membership attack's "
                                                                  "AUC (the files against never-seen validation "
                                                                  "images) is at most this (default without --alpha "
                                                                  "or --config: 0.52; docs/cli.md)"),
            config: Optional[Path] = typer.Option(None, help="unlearning YAML; flags override it"),
            set_: Optional[list[str]] = typer.Option(None, "--set", help="any config key, KEY=VALUE (repeatable; "
                                                                        "dotted for nested keys: optim.lr=1e-4); "
                                                                        "applied after --config, before the flags"),
            data_root: Optional[Path] = typer.Option(None, help="override the model's recorded dataset folder"),
            resume: bool = typer.Option(False, help="continue from the last checkpoint in --out"),
            overwrite: bool = typer.Option(False, help="replace --out if it exists")):
    """Make a trained model forget a class or a list of images."""
    from i2i_unlearn.config import ProxyTeacherConfig, TaskConfig
    from i2i_unlearn.front import parse_budgets, unlearn_front
    from i2i_unlearn.unlearn import unlearn as run_unlearn
    unlearn_config = with_overrides(load_yaml(UnlearnConfig, config) if config else UnlearnConfig(), set_ or [])
    overrides = {"method": method, "forget_classes": _names(forget_classes),
                 "forget_files": str(forget_files) if forget_files else None,
                 "retain_classes": _names(retain_classes), "retain_size": retain_size, "retain_ratio": retain_ratio,
                 "proxy_classes": _names(proxy_classes), "proxy_transform": _names(proxy_transform),
                 "alpha": alpha, "steps": steps, "checkpoint_every": checkpoint_every, "batch_size": batch_size,
                 "retain_batch_size": retain_batch_size,
                 "noise": noise, "feature_norm": feature_norm, "noise_context": noise_context, "seed": seed,
                 "retain_budget": _number(retain_budget, "--retain-budget", "1.10"),
                 "budget_metric": budget_metric, "forget_metric": forget_metric, "budget_evaluator": evaluator,
                 "stop_at_auc": stop_at_auc}
    for key, value in overrides.items():
        if value is not None:
            setattr(unlearn_config, key, value)
    if forget_goal is not None:   # "max" clears a goal a config file set
        unlearn_config.forget_goal = None if forget_goal == "max" else _number(forget_goal, "--forget-goal", "0.33")
    if lr is not None:   # replace() re-checks the value
        unlearn_config.optim = dataclasses.replace(unlearn_config.optim, lr=lr)
    if proxy_dataset:
        unlearn_config.proxy = DataConfig(dataset=proxy_dataset, root=str(proxy_root) if proxy_root else None)
    elif proxy_root is not None:
        if unlearn_config.proxy is None:
            raise UserError("--proxy-root is the folder of a proxy dataset: name the dataset (--proxy-dataset)")
        unlearn_config.proxy.root = str(proxy_root)
    if proxy_teacher is not None:
        unlearn_config.proxy_teacher = dataclasses.replace(unlearn_config.proxy_teacher or ProxyTeacherConfig(),
                                                           inputs=proxy_teacher)
    teacher_flags = {"--proxy-teacher-images": proxy_teacher_images, "--proxy-teacher-noise": proxy_teacher_noise,
                     "--proxy-teacher-task": proxy_teacher_task, "--proxy-teacher-ratio": proxy_teacher_ratio}
    given = [flag for flag, value in teacher_flags.items() if value is not None]
    if given:
        if unlearn_config.proxy_teacher is None:
            raise UserError(f"{', '.join(given)} only apply to a proxy of the model's own outputs: add "
                            "--proxy-teacher proxy (or noise)")
        teacher = unlearn_config.proxy_teacher
        unlearn_config.proxy_teacher = dataclasses.replace(
            teacher, images=teacher.images if proxy_teacher_images is None else proxy_teacher_images,
            noise=proxy_teacher_noise or teacher.noise,
            task=TaskConfig(proxy_teacher_task or teacher.task.name,
                            teacher.task.ratio if proxy_teacher_ratio is None else proxy_teacher_ratio))
    root = str(data_root) if data_root else None
    # no forget weight given: the library's default control (a budget, or a membership stop for a file list)
    from i2i_unlearn.controllers.defaults import Given, apply_default_control
    budget_flags = {"--forget-goal": forget_goal, "--budget-metric": budget_metric, "--forget-metric": forget_metric,
                    "--evaluator": evaluator}
    set_keys = {text.partition("=")[0].strip() for text in set_ or []}
    given = Given(forget_weight=config is not None or alpha is not None or "alpha" in set_keys, front=front is not None,
                  steps=steps is not None, checkpoint_every=checkpoint_every is not None,
                  evaluator=evaluator is not None,
                  budget_flags=[flag for flag, value in budget_flags.items() if value is not None])
    lines = apply_default_control(unlearn_config, model, given)
    if lines:
        _once("\n".join(lines))
    if front is not None:
        if unlearn_config.retain_budget is not None:
            raise UserError("give --front or --retain-budget (or a config's retain_budget), not both")
        unlearn_front(model, unlearn_config, parse_budgets(front), out, resume=resume, overwrite=overwrite,
                      data_root=root)
    else:
        run_unlearn(model, unlearn_config, out, resume=resume, overwrite=overwrite, data_root=root)
    _saved(out)
