"""`list`, `evaluate`, `audit`, `report`, `bench` and `demo`: what is registered, and how well a model forgot."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from i2i_unlearn.cli.app import DEFAULT_EVALUATOR, _integers, _model_specs, _names, app
from i2i_unlearn.errors import UserError


@app.command("list")
def list_things(what: str = typer.Argument(..., help="models | methods | datasets | tasks")):
    """List what is registered."""
    listings = {"models": _list_models, "methods": _list_methods, "datasets": _list_datasets, "tasks": _list_tasks}
    if what not in listings:
        raise UserError(f"cannot list {what!r}; choose one of: {', '.join(listings)}")
    for name, text in listings[what]().items():
        typer.echo(f"{name:16s} {text}".rstrip())


# one import per listing: `list methods` need not load transformers and diffusers for the model families
def _first_line(obj) -> str:
    return (obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else ""


def _list_models() -> dict[str, str]:
    from i2i_unlearn.models import MODELS
    return {name: _first_line(cls) for name, cls in MODELS.items()}


def _list_methods() -> dict[str, str]:
    from i2i_unlearn.methods import METHODS
    return {name: f"[{cls.trains}] {cls.summary}" for name, cls in METHODS.items()}


def _list_datasets() -> dict[str, str]:
    from i2i_unlearn.data import DATASETS
    return {name: _first_line(fn) for name, fn in DATASETS.items()}


def _list_tasks() -> dict[str, str]:
    from i2i_unlearn.tasks import TASKS
    return {name: "" for name in TASKS}


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
             max_eval_images: Optional[int] = typer.Option(None, help="score at most this many images of each set, "
                                                                      "evenly spread over it: a quick look (results "
                                                                      "and report say it is a sample)"),
             interval_images: Optional[int] = typer.Option(None, help="per-image features kept of each set "
                                                                      "(default 5000): a larger set keeps a seeded "
                                                                      "sample of this many for KID, per-class FID and "
                                                                      "the intervals; its other scores are of every "
                                                                      "image"),
             overwrite: bool = typer.Option(False, help="replace --out if it exists")):
    """Generate with several models on the same held-out images and score them."""
    from i2i_unlearn.config import TaskConfig
    from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
    from i2i_unlearn.evaluation.results import summary_table
    model_dirs = _model_specs(model)   # two models of one name are refused before any work
    results = evaluate_model_dirs(model_dirs, TaskConfig(task, ratio), evaluator, out,
                                  forget_classes=_names(forget_classes), forget_files=forget_files, seed=seed,
                                  split=split, overwrite=overwrite, max_images=max_eval_images,
                                  **({} if interval_images is None else {"interval_images": interval_images}))
    typer.echo(summary_table(results))
    typer.echo(f"results: {out / 'results.json'}")

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
          relearn_seeds: str = typer.Option("0,1,2", help="relearning attack: attack seeds (each its own training "
                                                          "images and batches)"),
          relearn_variants: str = typer.Option("whole,decoder-frozen,retain-finetune",
                                               help="relearning attacks: whole, decoder-frozen (the encoder alone), "
                                                    "retain-finetune (the whole model on retain images only)"),
          quantize_bits: str = typer.Option("8,4", help="weight quantization attacks, bits (empty: none); run "
                                                       "with the relearning attack"),
          band_model: Optional[list[str]] = typer.Option(None, help="a --model name of a retrained model, repeated: "
                                                                   "their relearning curves over every attack seed "
                                                                   "make the retrained band (default: "
                                                                   "--tell-reference), and the first that is not "
                                                                   "the tell reference sets the tell's floor"),
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
                            eval_steps=_integers(relearn_eval, "--relearn-eval"), seed=seed,
                            attack_seeds=_integers(relearn_seeds, "--relearn-seeds"),
                            variants=tuple(v.strip() for v in relearn_variants.split(",") if v.strip()),
                            quantize_bits=_integers(quantize_bits, "--quantize-bits"))
    relearn.check()
    band = [role(name) for name in band_model or ()]
    result = run_audit(model_dirs, out, evaluator_spec=evaluator, reference=reference, tell_reference=probe_reference,
                       forget_classes=_names(forget_classes), forget_files=forget_files, options=options,
                       relearn=relearn if relearn_steps > 0 else None, band_models=band, overwrite=overwrite,
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
    from i2i_unlearn.bench import command_line, load_bench, rewrite_tables, run_bench
    from i2i_unlearn.bench import dry_run as plan_only
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
