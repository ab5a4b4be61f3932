"""The `i2i-unlearn` command: train, unlearn, import, evaluate, audit, report, list, demo.

Each command imports what it runs inside its function: deferred for start-up time, so that `--help` and `list`
answer without loading torch, transformers and diffusers."""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from i2i_unlearn.config import (DataConfig, TokenizerTrainConfig, TrainConfig, UnlearnConfig, load_yaml,
                                with_overrides)
from i2i_unlearn.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Make image-to-image generative models forget (Li et al., ICLR 2024).")

DEFAULT_EVALUATOR = Path("pretrained/evaluator-animal-mnist")


def _once(text: str) -> None:
    """Print once: under `accelerate launch` every process runs the command."""
    from i2i_unlearn.distributed import process_state
    if process_state().is_main_process:
        typer.echo(text)


def _saved(out: Path) -> None:
    """`saved OUT`: the main process wrote OUT."""
    _once(f"saved {out}")


def _number(text: str | None, option: str, example: str) -> float | None:
    """A number given as text (so a typo gets the one-line `error:` of every bad input, not a usage screen)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{option} expects a number, e.g. {example}; got {text!r}") from None


def _names(values: list[str] | None) -> list[str] | None:
    """Accept `--forget-classes Cat --forget-classes Dog` and `--forget-classes Cat,Dog`."""
    if values is None:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


@app.command()
def train(config: Path = typer.Option(..., help="training YAML (see configs/)"),
          out: Path = typer.Option(..., help="model directory to write"),
          steps: Optional[int] = typer.Option(None, help="override the config's step count"),
          resume: bool = typer.Option(False, help="continue from the last checkpoint in --out"),
          overwrite: bool = typer.Option(False, help="replace --out if it exists")):
    """Train a model family from scratch on a dataset."""
    from i2i_unlearn.train import train as run_train
    train_config = load_yaml(TrainConfig, config)
    if steps is not None:
        train_config.steps = steps
    run_train(train_config, out, resume=resume, overwrite=overwrite)
    _saved(out)


@app.command("train-tokenizer")
def train_tokenizer(config: Path = typer.Option(..., help="tokenizer YAML (see configs/vq-tokenizer-*.yaml)"),
                    out: Path = typer.Option(..., help="tokenizer directory to write"),
                    steps: Optional[int] = typer.Option(None, help="override the config's step count"),
                    resume: bool = typer.Option(False, help="continue from the last checkpoint in --out"),
                    overwrite: bool = typer.Option(False, help="replace --out if it exists")):
    """Train the VQ tokenizer of the vqgan family (a VQ-GAN); the transformer is trained by `train`."""
    from i2i_unlearn.train_tokenizer import train_tokenizer as run_train_tokenizer
    tokenizer_config = load_yaml(TokenizerTrainConfig, config)
    if steps is not None:
        tokenizer_config.steps = steps
    run_train_tokenizer(tokenizer_config, out, resume=resume, overwrite=overwrite)
    _saved(out)


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
    from i2i_unlearn.front import parse_budgets, unlearn_front
    from i2i_unlearn.config import ProxyTeacherConfig, TaskConfig
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


@app.command("import")
def import_checkpoint(family: str = typer.Option(..., help="mae (transformers ViTMAEForPreTraining) | diffusion "
                                                           "(diffusers UNet2DModel, Palette-style inpainting)"),
                      from_pretrained: Path = typer.Option(..., help="the Hugging Face save_pretrained folder "
                                                                     "(safetensors; left untouched)"),
                      out: Path = typer.Option(..., help="model directory to write"),
                      dataset: Optional[str] = typer.Option(None, help="the data the model is meant for: see "
                                                                       "`i2i-unlearn list datasets`"),
                      data_root: Optional[Path] = typer.Option(None, help="its folder (image-folder, fashion-mnist)"),
                      data_config: Optional[Path] = typer.Option(None, help="YAML of data keys (split sizes, seed); "
                                                                            "flags override it"),
                      classes: Optional[list[str]] = typer.Option(None, help="the classes it was trained on "
                                                                             "(default: all)"),
                      scheduler: Optional[Path] = typer.Option(None, help="diffusion: the scheduler_config.json (or "
                                                                          "its folder) the U-Net was trained with"),
                      overwrite: bool = typer.Option(False, help="replace --out if it exists")):
    """Wrap your own Hugging Face checkpoint into a model folder every command accepts."""
    from i2i_unlearn.import_pretrained import import_pretrained, read_data_file
    data = read_data_file(data_config) if data_config else {}
    if dataset:
        data["dataset"] = dataset
    if data_root:
        data["root"] = str(data_root)
    import_pretrained(family, from_pretrained, out, data, classes=_names(classes), scheduler=scheduler,
                      overwrite=overwrite)
    _saved(out)


@app.command("list")
def list_things(what: str = typer.Argument(..., help="models | methods | datasets | tasks")):
    """List what is registered."""
    from i2i_unlearn.data import DATASETS
    from i2i_unlearn.methods import METHODS
    from i2i_unlearn.models import MODELS
    from i2i_unlearn.tasks import TASKS
    tables = {"models": {name: (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
                         for name, cls in MODELS.items()},
              "methods": {name: f"[{cls.trains}] {cls.summary}" for name, cls in METHODS.items()},
              "datasets": {name: (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
                           for name, fn in DATASETS.items()},
              "tasks": {name: "" for name in TASKS}}
    if what not in tables:
        raise UserError(f"cannot list {what!r}; choose one of: {', '.join(tables)}")
    for name, text in tables[what].items():
        typer.echo(f"{name:16s} {text}".rstrip())


@app.command("train-evaluator")
def train_evaluator(config: Path = typer.Option(..., help="evaluator YAML (see configs/)"),
                    out: Path = typer.Option(..., help="evaluator directory to write"),
                    overwrite: bool = typer.Option(False, help="replace --out if it exists")):
    """Train the domain evaluator (a classifier with a 'no object' class) used by `evaluate`."""
    from i2i_unlearn.config import EvaluatorConfig
    from i2i_unlearn.evaluation.evaluator import train_evaluator as run
    evaluator = run(load_yaml(EvaluatorConfig, config), out, overwrite=overwrite)
    typer.echo(f"saved {out} (test accuracy {evaluator.info['test_accuracy']:.4f})")


@app.command()
def evaluate(model: list[str] = typer.Option(..., help="NAME=DIR (or DIR), repeated: e.g. original=DIR "
                                                      "unlearned=DIR"),
             out: Path = typer.Option(..., help="folder for results.json, grids and T-SNE"),
             evaluator: str = typer.Option(str(DEFAULT_EVALUATOR),
                                           help="evaluator directory, or clip:/dir or hf:/dir (local transformers)"),
             task: str = typer.Option("center-inpaint", help="center-inpaint | outpaint | random-patches"),
             ratio: float = typer.Option(0.5, help="hole side / visible side / hidden fraction"),
             forget_classes: Optional[list[str]] = typer.Option(None, help="default: from the unlearned model"),
             forget_files: Optional[Path] = typer.Option(None, help="a forgotten file list: scored on those images, "
                                                                    "retain on every never-seen image (default: "
                                                                    "from the unlearned model)"),
             seed: int = typer.Option(0, help="masks and sampling seed, the same for every model"),
             split: str = typer.Option("test", help="held-out images to score: test, or val to choose knobs"),
             overwrite: bool = typer.Option(False, help="replace --out if it exists")):
    """Generate with several models on the same held-out images and score them."""
    from i2i_unlearn.config import TaskConfig
    from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
    from i2i_unlearn.evaluation.results import summary_table
    model_dirs = _model_specs(model)   # two models of one name are refused before any work
    results = evaluate_model_dirs(model_dirs, TaskConfig(task, ratio), evaluator, out,
                                  forget_classes=_names(forget_classes), forget_files=forget_files, seed=seed,
                                  split=split, overwrite=overwrite)
    typer.echo(summary_table(results))
    typer.echo(f"results: {out / 'results.json'}")


def _model_specs(specs: list[str]) -> dict[str, str]:
    """`DIR` or `NAME=DIR` per model; a bare folder is named after itself."""
    found: dict[str, str] = {}
    for spec in specs:
        name, sep, directory = spec.partition("=")
        if not sep:
            name, directory = Path(spec).name, spec
        if not name or not directory:
            raise UserError(f"--model expects DIR or NAME=DIR, got {spec!r}")
        if name in found:
            raise UserError(f"two models are named {name!r}: name them (NAME=DIR)")
        found[name] = directory
    return found


def _integers(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"{option} expects whole numbers separated by commas, got {text!r}") from None


@app.command()
def audit(model: list[str] = typer.Option(..., help="model folder or NAME=DIR, repeated: original, unlearned ones "
                                                    "(the first one's training data defines the images)"),
          out: Path = typer.Option(..., help="folder for audit.json, roc.png, grid_forget.png, relearn.png"),
          reference_model: Optional[str] = typer.Option(None, help="a --model name, DIR or NAME=DIR that calibrates "
                                                                  "the attack (the retrained model, or the original "
                                                                  "to score the retrained one too)"),
          tell_reference: Optional[str] = typer.Option(None, help="the model whose forget outputs the tell probe "
                                                                 "compares with (default: --reference-model; the "
                                                                 "retrained model); a --model name, DIR or NAME=DIR"),
          forget_classes: Optional[list[str]] = typer.Option(None, help="classes forgotten (default: from the models)"),
          forget_files: Optional[Path] = typer.Option(None, help="text file of the image ids forgotten"),
          evaluator: str = typer.Option(str(DEFAULT_EVALUATOR), help="evaluator directory (or clip:/dir, hf:/dir)"),
          split: str = typer.Option("test", help="where the never-seen non-members come from: test or val"),
          max_images: int = typer.Option(200, help="members and non-members each, at most (seeded sample)"),
          task: str = typer.Option("center-inpaint", help="task of the tell, the grid and the relearning scores"),
          ratio: float = typer.Option(0.5, help="its hole side / visible side / hidden fraction"),
          timesteps: str = typer.Option("100,250,500", help="diffusion: the attack's timesteps"),
          probe_folds: int = typer.Option(5, help="cross-validation folds of the tell probe"),
          relearn_steps: int = typer.Option(0, help="relearning attack: fine-tuning steps (0: skip it)"),
          relearn_images: int = typer.Option(16, help="relearning attack: forget-class training images"),
          relearn_lr: float = typer.Option(1e-4, help="relearning attack: learning rate"),
          relearn_batch_size: int = typer.Option(16, help="relearning attack: batch size"),
          relearn_eval: str = typer.Option("0,5,10,25,50", help="relearning attack: steps measured at"),
          shadow_in: Optional[list[Path]] = typer.Option(None, help="per-example attack (LiRA): a model folder "
                                                                    "trained WITH the forget images, e.g. the "
                                                                    "original recipe with another seed (repeat, "
                                                                    "at least 2)"),
          shadow_out: Optional[list[Path]] = typer.Option(None, help="per-example attack: a model folder trained "
                                                                     "WITHOUT them, e.g. retrained (repeat, at "
                                                                     "least 3)"),
          seed: int = typer.Option(0, help="sampling, masks and probe folds"),
          overwrite: bool = typer.Option(False, help="replace --out if it exists")):
    """Membership inference, relearning and the tell: does the forgetting survive an audit?"""
    from i2i_unlearn.config import TaskConfig
    from i2i_unlearn.evaluation.audit import AuditOptions, run_audit, summary_lines
    from i2i_unlearn.evaluation.audit.relearn import RelearnConfig
    model_dirs = _model_specs(model)

    def role(spec: str | None) -> str | None:
        """A model named by a --model name, or another folder (added to the audited models)."""
        if not spec or spec in model_dirs:
            return spec
        if "=" not in spec and not Path(spec).is_dir():
            raise UserError(f"{spec!r} is neither a --model name nor a folder; the names given: "
                            f"{', '.join(model_dirs)}")
        ((name, directory),) = _model_specs([spec]).items()
        same = [n for n, d in model_dirs.items() if Path(d).resolve() == Path(directory).resolve()]
        if same:
            return same[0]
        if name in model_dirs:
            raise UserError(f"{spec!r} is named {name!r} like another --model: name it (NAME=DIR)")
        model_dirs[name] = directory
        return name
    reference, probe_reference = role(reference_model), role(tell_reference)
    options = AuditOptions(split=split, max_images=max_images, task=TaskConfig(task, ratio),
                           timesteps=_integers(timesteps, "--timesteps"), probe_folds=probe_folds, seed=seed,
                           shadows_in=tuple(str(d) for d in shadow_in or ()),
                           shadows_out=tuple(str(d) for d in shadow_out or ()))
    relearn = RelearnConfig(steps=relearn_steps, images=relearn_images, batch_size=relearn_batch_size, lr=relearn_lr,
                            eval_steps=_integers(relearn_eval, "--relearn-eval"), seed=seed)
    relearn.check()
    result = run_audit(model_dirs, out, evaluator_spec=evaluator, reference=reference, tell_reference=probe_reference,
                       forget_classes=_names(forget_classes), forget_files=forget_files, options=options,
                       relearn=relearn if relearn_steps > 0 else None, overwrite=overwrite,
                       progress=lambda text: typer.echo(text, err=True))
    typer.echo("\n".join(summary_lines(result)))
    typer.echo(f"audit: {out / 'audit.json'}")


@app.command()
def report(results: Path = typer.Option(..., help="results.json written by `evaluate`"),
           out: Optional[Path] = typer.Option(None, help="folder for report.html and report.md (default: beside results)"),
           front: Optional[Path] = typer.Option(None, help="a front.json of `unlearn --front`, shown beside the results"),
           audit: Optional[list[Path]] = typer.Option(None, help="an audit.json of `audit` (repeatable: one subsection "
                                                                "each): its tables and figures make an Audit section")):
    """Write a self-contained report.html and a report.md from evaluation results."""
    from i2i_unlearn.evaluation.report import write_report
    html, markdown = write_report(results, out, front, audit or [])
    typer.echo(f"wrote {html} and {markdown}")


@app.command()
def bench(config: Path = typer.Option(..., help="bench YAML (see benchmarks/bench-*.yaml)"),
          methods: Optional[list[str]] = typer.Option(None, help="only these method labels (comma-separated)"),
          dry_run: bool = typer.Option(False, help="list the cells and their size (steps, evaluations), run nothing"),
          tables_only: bool = typer.Option(False, help="rewrite bench.json from the finished cells, run nothing "
                                                        "(publishes a bench stopped part-way)"),
          assume_steps_per_s: Optional[float] = typer.Option(None, help="dry run: unlearning steps/s for the estimate"),
          assume_evaluation_s: Optional[float] = typer.Option(None, help="dry run: seconds per evaluation")):
    """Every family x method x seed x setting: unlearn, evaluate, cache; tables in <results>/bench.json."""
    from i2i_unlearn.bench import command_line, dry_run as plan_only, load_bench, rewrite_tables, run_bench
    spec = load_bench(config)
    if dry_run and tables_only:
        raise UserError("--dry-run and --tables-only: choose one")
    if tables_only:
        progress = rewrite_tables(spec, _names(methods))["progress"]
        typer.echo(f"bench: {spec['results'] / 'bench.json'} ({progress['done']} of {progress['cells']} cells done)")
        return
    if dry_run:
        plan_only(spec, _names(methods), assume_steps_per_s, assume_evaluation_s, echo=typer.echo)
        return
    run_bench(spec, command=command_line(), methods=_names(methods), echo=typer.echo)
    typer.echo(f"bench: {spec['results'] / 'bench.json'}")


@app.command()
def demo(family: str = typer.Option("mae", help="mae (10 classes), diffusion (10 classes) or vqgan (Cat+Dog)"),
         model: Optional[Path] = typer.Option(None, help="model directory (default: the family's shipped model)"),
         evaluator: Path = typer.Option(DEFAULT_EVALUATOR, help="the shipped Animal-MNIST evaluator"),
         config: Optional[Path] = typer.Option(None, help="unlearning knobs (default: the budgeted run, retain FID at most "
                                                          "1.15x; configs/unlearn-<model>.yaml: those tuned on validation)"),
         out: Optional[Path] = typer.Option(None, help="where the demo writes, replaced each run (default: runs/demo-FAMILY)"),
         forget_classes: Optional[str] = typer.Option(None, help="classes to forget (default: the config's, Cat)")):
    """The main job: forget Cat with `ours`, evaluate before/after on held-out images, write the report."""
    from i2i_unlearn.demo import demo_paths, run_demo
    shipped_model, tuned_config, retrained = demo_paths(family)
    if config is None:
        typer.echo(f"(the knobs hand-tuned on validation for the shipped model: --config {tuned_config})")
    # the shipped reference is retrained without Cat from the shipped model: only for the defaults
    reference = retrained if model is None and not forget_classes else None
    run_demo(model or shipped_model, evaluator, config, out or Path(f"runs/demo-{family}"),
             _names([forget_classes]) if forget_classes else None, reference)


def main() -> None:
    try:
        app()
    except UserError as exc:
        if os.environ.get("I2I_UNLEARN_DEBUG"):
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: a run that wrote a checkpoint continues with --resume; one stopped before its "
                   "first checkpoint starts again with --overwrite", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
