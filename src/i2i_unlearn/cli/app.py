"""The `i2i-unlearn` command object and what every command shares: printing once under many processes,
numbers and names read from flags, model specs."""
from __future__ import annotations

from pathlib import Path

import typer

from i2i_unlearn import shipped
from i2i_unlearn.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Make image-to-image generative models forget (Li et al., ICLR 2024).")

DEFAULT_EVALUATOR = shipped.EVALUATOR   # relative to the folder the command runs from (shipped.py)

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
