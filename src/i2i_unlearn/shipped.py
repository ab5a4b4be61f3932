"""The files the repository ships, by convention relative to the folder a command runs from (the repository root):
the trained models in `pretrained/`, the knobs chosen on validation in `configs/`. These names are the package's
only defaults that point at files. Run from anywhere else (an installed package), a command that needs one of
them says which flag to pass (`--evaluator`, `--model`, `--config`)."""
from __future__ import annotations

from pathlib import Path

PRETRAINED = Path("pretrained")
CONFIGS = Path("configs")
# the evaluator of the Animal-MNIST models (a small classifier with a "no object" class)
EVALUATOR = PRETRAINED / "evaluator-animal-mnist"


def pretrained(name: str) -> Path:
    return PRETRAINED / name


def unlearning_knobs(model_name: str) -> Path:
    """The knobs chosen on validation for a shipped model (benchmarks/tune.py)."""
    return CONFIGS / f"unlearn-{model_name}.yaml"
