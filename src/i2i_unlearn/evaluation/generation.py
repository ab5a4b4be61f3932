"""Generating outputs for a test set: same task, same masks, same seed for every model."""
from __future__ import annotations

import torch

from i2i_unlearn.config import TaskConfig
from i2i_unlearn.models import I2IModel
from i2i_unlearn.tasks import make_mask


@torch.no_grad()
def generate_outputs(model: I2IModel, images: torch.Tensor, task: TaskConfig, seed: int = 0,
                     batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs, masks) for `images`. Masks and sampling randomness depend only on the seed and
    the batch position, so two models given the same arguments see identical inputs."""
    model.eval()
    outputs, masks = [], []
    for start in range(0, len(images), batch_size):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + start)
        x = images[start:start + batch_size]
        mask = make_mask(task, len(x), x.shape[-1], model.mask_grid, generator)
        outputs.append(model.generate(x, mask, generator))
        masks.append(mask)
    return torch.cat(outputs), torch.cat(masks)


def hidden_mse(outputs: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor) -> float:
    """Mean squared error over the hidden pixels only (visible pixels are pasted back)."""
    error = ((outputs - truth) ** 2 * masks).sum() / (masks.sum() * outputs.shape[1])
    return float(error)
