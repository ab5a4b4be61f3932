"""Evaluate models side by side on the held-out forget and retain test images under one task."""
from __future__ import annotations

from pathlib import Path

import torch

from i2i_unlearn.config import TaskConfig, to_dict
from i2i_unlearn.data import UnlearnSplit
from i2i_unlearn.evaluation.generation import generate_outputs, hidden_mse
from i2i_unlearn.evaluation.grids import image_grid, show_input
from i2i_unlearn.models import I2IModel


def evaluate(models: dict[str, I2IModel], split: UnlearnSplit, task: TaskConfig, out_dir: str | Path,
             seed: int = 0, grid_columns: int = 8) -> dict:
    """Generate with every model on the same test images, masks and seed; score and draw them."""
    out_dir = Path(out_dir)
    results = {"task": to_dict(task), "seed": seed, "sets": {}}
    for set_name, images in (("forget", split.forget_test), ("retain", split.retain_test)):
        scores, rows = {}, []
        for name, model in models.items():
            outputs, masks = generate_outputs(model, images.images, task, seed)
            scores[name] = {"hidden_mse": hidden_mse(outputs, images.images, masks)}
            if not rows:
                rows.append(("input", show_input(images.images[:grid_columns], masks[:grid_columns])))
            rows.append((name, outputs[:grid_columns]))
        rows.append(("ground truth", images.images[:grid_columns]))
        grid = image_grid(rows, out_dir / f"grid_{set_name}.png")
        results["sets"][set_name] = {"count": len(images), "scores": scores, "grid": grid.name}
    return results
