"""The `i2i-unlearn` command: train, unlearn, import, evaluate, audit, report, list, demo.

Each command imports what it runs inside its function: deferred for start-up time, so that `--help` (of the tool and
of each command) answers in a fraction of a second, without loading torch, transformers and diffusers."""
from __future__ import annotations

import os
import sys

import typer

from i2i_unlearn.cli.app import app
from i2i_unlearn.errors import UserError
# each module registers its commands on `app`, in the order `--help` lists them
from i2i_unlearn.cli import training, unlearning, scoring  # noqa: E402,F401  isort: skip


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
