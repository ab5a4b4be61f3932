"""`unlearn`: make a model forget a class or a list of images.

The options that set one UnlearnConfig field each (FIELD_FLAGS) are built from the fields themselves: the flag is
the field's name (`--forget-classes` for forget_classes), its type the field's, its help the field's (config.py,
`knob`). Every field, these and the rest (tasks, optim.*, log_every, ...), is reached by `--set KEY=VALUE`. The
options written out below are the ones that are not one field: a nested field, a mode, or the run itself."""
from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from pathlib import Path
from typing import Optional

import typer

from i2i_unlearn.cli.app import DEFAULT_EVALUATOR, _names, _number, _once, _saved, app
from i2i_unlearn.config import (
    DataConfig,
    ProxyTeacherConfig,
    TaskConfig,
    UnlearnConfig,
    field_help,
    from_dict,
    read_yaml,
    with_overrides,
)
from i2i_unlearn.errors import UserError

LISTED = "comma-separated or repeated"
# UnlearnConfig field -> what its flag adds to the field's help. A field listed here gets the flag `--<field>`, whose
# value (when given) replaces the config's; a list is given comma-separated or repeated.
FIELD_FLAGS = {
    "method": "",
    "forget_classes": LISTED,
    "forget_files": "",
    "retain_classes": LISTED,
    "retain_size": "",
    "retain_ratio": "",
    "proxy_classes": LISTED,
    "proxy_transform": LISTED,
    "alpha": "fixed (without --alpha, --config, --retain-budget or --front the run is budgeted: retain FID at most "
             "1.15x the original's, docs/budget.md)",
    "steps": "",
    "checkpoint_every": "",
    "batch_size": "",
    "retain_batch_size": "",
    "noise": "",
    "feature_norm": "",
    "noise_context": "",
    "seed": "",
    "budget_metric": "",
    "forget_metric": "",
    "stop_at_auc": "default without --alpha or --config: 0.52; docs/cli.md",
    "mixed_precision": "",
    "gradient_checkpointing": "",
    "data_workers": "",
}


def _flag_type(name: str):
    """The flag's type: the field's, without None (a flag not given leaves the config's value)."""
    hint = typing.get_type_hints(UnlearnConfig)[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return Optional[hint]


def with_field_flags(command):
    """`command` with one option per FIELD_FLAGS field added to the signature typer reads; their values reach
    `command` as one dict, `fields` (None where a flag is not given)."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "fields"]
    flags = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=_flag_type(name),
                               default=typer.Option(None, help="; ".join(
                                   text for text in (field_help(UnlearnConfig, name), note) if text)))
             for name, note in FIELD_FLAGS.items()]
    parameters = own[:2] + flags + own[2:]   # --model, --out, then the fields, then the rest

    @functools.wraps(command)
    def wrapper(**values):
        return command(**{p.name: values[p.name] for p in own}, fields={name: values[name] for name in FIELD_FLAGS})
    wrapper.__signature__ = inspect.Signature(
        [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in parameters])
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def _teacher_help(name: str, default) -> str:
    return f"--proxy-teacher: {field_help(ProxyTeacherConfig, name)} (default {default})"


TEACHER = ProxyTeacherConfig()   # the defaults the --proxy-teacher-* flags name


@app.command()
@with_field_flags
def unlearn(model: Path = typer.Option(..., help="model directory (left untouched)"),
            out: Path = typer.Option(..., help="directory for the unlearned model"),
            proxy_dataset: Optional[str] = typer.Option(None, help="use this dataset as a proxy retain set"),
            proxy_root: Optional[Path] = typer.Option(None, help="folder of the proxy dataset"),
            proxy_teacher: Optional[str] = typer.Option(None, help=field_help(UnlearnConfig, "proxy_teacher") + (
                "; its inputs: proxy (the --proxy-dataset images) | noise (no dataset needed)")),
            proxy_teacher_images: Optional[int] = typer.Option(None, help=_teacher_help("images", TEACHER.images)),
            proxy_teacher_task: Optional[str] = typer.Option(None, help=_teacher_help("task", TEACHER.task.name)),
            proxy_teacher_ratio: Optional[float] = typer.Option(None, help="--proxy-teacher: the task's ratio "
                                                                          f"(default {TEACHER.task.ratio})"),
            proxy_teacher_noise: Optional[str] = typer.Option(None, help=_teacher_help("noise", TEACHER.noise)),
            lr: Optional[float] = typer.Option(None, help="learning rate (optim.lr)"),
            retain_budget: Optional[str] = typer.Option(None, help=field_help(UnlearnConfig, "retain_budget")),
            forget_goal: Optional[str] = typer.Option(None, help=field_help(UnlearnConfig, "forget_goal") + (
                "; max: clears a goal that --config set")),
            evaluator: Optional[str] = typer.Option(None, help=field_help(UnlearnConfig, "budget_evaluator") + (
                f"; default {DEFAULT_EVALUATOR}")),
            front: Optional[str] = typer.Option(None, help="one budgeted model per budget, e.g. 1.02,1.05,1.10, in "
                                                          "--out/budget-<b>/, with front.json and front.png"),
            config: Optional[Path] = typer.Option(None, help="unlearning YAML; flags override it"),
            set_: Optional[list[str]] = typer.Option(None, "--set", help="any config key, KEY=VALUE (repeatable; "
                                                                        "dotted for nested keys: optim.lr=1e-4); "
                                                                        "applied after --config, before the flags"),
            data_root: Optional[Path] = typer.Option(None, help="override the model's recorded dataset folder"),
            resume: bool = typer.Option(False, help="continue from the last checkpoint in --out"),
            overwrite: bool = typer.Option(False, help="replace --out if it exists"),
            fields: dict | None = None):
    """Make a trained model forget a class or a list of images."""
    from i2i_unlearn.front import parse_budgets, unlearn_front
    from i2i_unlearn.unlearn import unlearn as run_unlearn
    written = read_yaml(config) if config else {}
    unlearn_config = with_overrides(from_dict(UnlearnConfig, written, f" {config.name}") if config else UnlearnConfig(),
                                    set_ or [])
    chosen, replaced = _chosen_keys(written, set_ or []), []
    for key, value in (fields or {}).items():
        if value is not None:
            value = _names(value) if isinstance(value, list) else value
            before = getattr(unlearn_config, key)
            if key in chosen and before != value:
                replaced.append(f"--{key.replace('_', '-')} {_shown(value)} (not {_shown(before)})")
            setattr(unlearn_config, key, value)
    if retain_budget is not None:
        unlearn_config.retain_budget = _number(retain_budget, "--retain-budget", "1.10")
    if forget_goal is not None:   # "max" clears a goal a config file set
        unlearn_config.forget_goal = None if forget_goal == "max" else _number(forget_goal, "--forget-goal", "0.33")
    if evaluator is not None:
        unlearn_config.budget_evaluator = evaluator
    if lr is not None:   # replace() re-checks the value
        if "optim.lr" in chosen and unlearn_config.optim.lr != lr:
            replaced.append(f"--lr {lr:g} (not {unlearn_config.optim.lr:g})")
        unlearn_config.optim = dataclasses.replace(unlearn_config.optim, lr=lr)
    if replaced:   # a flag and the config disagree: the flag wins, and the user hears which value was used
        given = " and ".join(name for name, value in (("--config", config), ("--set", set_)) if value)
        _once(f"flags over {given}: {'; '.join(replaced)}")
    _apply_proxy_flags(unlearn_config, proxy_dataset, proxy_root, proxy_teacher, {
        "--proxy-teacher-images": proxy_teacher_images, "--proxy-teacher-noise": proxy_teacher_noise,
        "--proxy-teacher-task": proxy_teacher_task, "--proxy-teacher-ratio": proxy_teacher_ratio})
    root = str(data_root) if data_root else None
    # no forget weight given: the library's default control (a budget, or a membership stop for a file list)
    from i2i_unlearn.controllers.defaults import Given, apply_default_control
    budget_flags = {"--forget-goal": forget_goal, "--budget-metric": fields["budget_metric"],
                    "--forget-metric": fields["forget_metric"], "--evaluator": evaluator}
    set_keys = {text.partition("=")[0].strip() for text in set_ or []}
    given = Given(forget_weight=config is not None or fields["alpha"] is not None or "alpha" in set_keys,
                  front=front is not None, steps=fields["steps"] is not None,
                  checkpoint_every=fields["checkpoint_every"] is not None, evaluator=evaluator is not None,
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


def _chosen_keys(written: dict, overrides: list[str]) -> set[str]:
    """The keys --config (`written`) and --set gave a value (dotted below optim): a flag that disagrees with one is
    reported."""
    keys = {text.partition("=")[0].strip() for text in overrides}
    return keys | set(written) | {f"optim.{key}" for key in written.get("optim") or {}}


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else f"{value:g}" if isinstance(value, float) else str(value)


def _apply_proxy_flags(config: UnlearnConfig, dataset: str | None, root: Path | None, teacher: str | None,
                       teacher_flags: dict) -> None:
    """--proxy-dataset/--proxy-root (UnlearnConfig.proxy) and --proxy-teacher* (its proxy_teacher), over `config`."""
    if dataset:
        config.proxy = DataConfig(dataset=dataset, root=str(root) if root else None)
    elif root is not None:
        if config.proxy is None:
            raise UserError("--proxy-root is the folder of a proxy dataset: name the dataset (--proxy-dataset)")
        config.proxy.root = str(root)
    if teacher is not None:
        config.proxy_teacher = dataclasses.replace(config.proxy_teacher or ProxyTeacherConfig(), inputs=teacher)
    given = [flag for flag, value in teacher_flags.items() if value is not None]
    if given:
        if config.proxy_teacher is None:
            raise UserError(f"{', '.join(given)} only apply to a proxy of the model's own outputs: add "
                            "--proxy-teacher proxy (or noise)")
        current = config.proxy_teacher
        images, noise, task, ratio = teacher_flags.values()
        config.proxy_teacher = dataclasses.replace(
            current, images=current.images if images is None else images, noise=noise or current.noise,
            task=TaskConfig(task or current.task.name, current.task.ratio if ratio is None else ratio))
