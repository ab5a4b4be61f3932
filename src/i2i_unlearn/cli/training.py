"""`train`, `train-tokenizer`, `train-evaluator` and `import`: making the models unlearning starts from."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from i2i_unlearn.cli.app import _names, _saved, app
from i2i_unlearn.config import (
    TokenizerTrainConfig,
    TrainConfig,
    UnlearnConfig,
    field_help,
    load_yaml,
)


@app.command()
def train(config: Path = typer.Option(..., help="training YAML (see configs/)"),
          out: Path = typer.Option(..., help="model directory to write"),
          steps: Optional[int] = typer.Option(None, help="override the config's step count"),
          mixed_precision: Optional[str] = typer.Option(None, help=field_help(UnlearnConfig, "mixed_precision")),
          gradient_checkpointing: Optional[bool] = typer.Option(
              None, help=field_help(UnlearnConfig, "gradient_checkpointing")),
          data_workers: Optional[int] = typer.Option(None, help=field_help(UnlearnConfig, "data_workers")),
          resume: bool = typer.Option(False, help="continue from the last checkpoint in --out"),
          overwrite: bool = typer.Option(False, help="replace --out if it exists")):
    """Train a model family from scratch on a dataset."""
    from i2i_unlearn.train import train as run_train
    train_config = load_yaml(TrainConfig, config)
    if steps is not None:
        train_config.steps = steps
    if mixed_precision is not None:
        train_config.mixed_precision = mixed_precision
    if gradient_checkpointing is not None:
        train_config.gradient_checkpointing = gradient_checkpointing
    if data_workers is not None:
        train_config.data_workers = data_workers
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

@app.command("import")
def import_checkpoint(family: str = typer.Option(..., help="mae (transformers ViTMAEForPreTraining) | diffusion "
                                                           "(diffusers UNet2DModel, Palette-style inpainting)"),
                      from_pretrained: Path = typer.Option(..., help="the Hugging Face save_pretrained folder "
                                                                     "(safetensors; left untouched)"),
                      out: Path = typer.Option(..., help="model directory to write"),
                      dataset: Optional[str] = typer.Option(None, help="the data the model is meant for: see "
                                                                       "`i2i-unlearn list datasets`"),
                      data_root: Optional[Path] = typer.Option(None, help="its folder (image-folder, hf-dataset, "
                                                                          "fashion-mnist)"),
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

@app.command("train-evaluator")
def train_evaluator(config: Path = typer.Option(..., help="evaluator YAML (see configs/)"),
                    out: Path = typer.Option(..., help="evaluator directory to write"),
                    overwrite: bool = typer.Option(False, help="replace --out if it exists")):
    """Train the domain evaluator (a classifier with a 'no object' class) used by `evaluate`."""
    from i2i_unlearn.config import EvaluatorConfig
    from i2i_unlearn.evaluation.evaluator import train_evaluator as run
    evaluator = run(load_yaml(EvaluatorConfig, config), out, overwrite=overwrite)
    typer.echo(f"saved {out} (test accuracy {evaluator.info['test_accuracy']:.4f})")
