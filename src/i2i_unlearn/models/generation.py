"""Generating outputs for a test set: same task, same masks, same seed for every model."""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from i2i_unlearn.config import TaskConfig
from i2i_unlearn.models import I2IModel
from i2i_unlearn.tasks import make_mask

PROGRESS_DELAY_S = 2.0   # quick generations show no bar


@torch.no_grad()
def generate_outputs(model: I2IModel, images: torch.Tensor, task: TaskConfig, seed: int = 0,
                     batch_size: int = 128, description: str = "generating") -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs, masks) for `images`. Masks and sampling randomness depend only on the seed and
    the batch position, so two models given the same arguments see identical inputs.
    A progress bar named `description` appears when generating takes more than a few seconds (a sampler)."""
    model.eval()
    outputs, masks = [], []
    with tqdm(total=len(images), desc=description, unit="image", delay=PROGRESS_DELAY_S, leave=False,
              dynamic_ncols=True) as bar:
        for start in range(0, len(images), batch_size):
            generator = torch.Generator().manual_seed(seed * 1_000_003 + start)
            x = images[start:start + batch_size]
            mask = make_mask(task, len(x), x.shape[-1], model.mask_grid, generator)
            model.progress_callback = lambda fraction, start=start, count=len(x): bar.update(
                start + int(fraction * count) - bar.n)
            try:
                outputs.append(model.generate(x, mask, generator))
            finally:
                model.progress_callback = None
            masks.append(mask)
            bar.update(start + len(x) - bar.n)
    return torch.cat(outputs), torch.cat(masks)


def hidden_mse(outputs: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor) -> float:
    """Mean squared error over the hidden pixels only (visible pixels are pasted back)."""
    error = ((outputs - truth) ** 2 * masks).sum() / (masks.sum() * outputs.shape[1])
    return float(error)
