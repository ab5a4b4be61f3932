"""Generating outputs for a test set: same task, same masks, same seed for every model."""
from __future__ import annotations

from typing import Callable, Iterable, Iterator

import torch
from tqdm.auto import tqdm

from i2i_unlearn.config import TaskConfig
from i2i_unlearn.models import I2IModel
from i2i_unlearn.tasks import make_mask

PROGRESS_DELAY_S = 2.0   # quick generations show no bar
GENERATION_BATCH = 128   # images generated at once; the batch positions seed the randomness


@torch.no_grad()
def generate_outputs(model: I2IModel, images: torch.Tensor, task: TaskConfig, seed: int = 0,
                     batch_size: int = GENERATION_BATCH, description: str = "generating") -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs, masks) for `images`. Masks and sampling randomness depend only on the seed and
    the batch position, so two models given the same arguments see identical inputs.
    A progress bar named `description` appears when generating takes more than a few seconds (a sampler)."""
    outputs, masks = [], []
    for _, output, mask in generate_batches(model, images.split(batch_size), task, seed, len(images), description):
        outputs.append(output)
        masks.append(mask)
    return torch.cat(outputs), torch.cat(masks)


@torch.no_grad()
def generate_batches(model: I2IModel, batches: Iterable[torch.Tensor], task: TaskConfig, seed: int = 0,
                     total: int | None = None, description: str = "generating"
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(images, outputs, masks) batch by batch, for a set too large to hold: each batch's randomness depends on the
    seed and the position of its first image, so batches of GENERATION_BATCH images give what generate_outputs
    gives, and nothing but the current batch is kept."""
    start = 0
    with tqdm(total=total, desc=description, unit="image", delay=PROGRESS_DELAY_S, leave=False,
              dynamic_ncols=True) as bar:
        for x in batches:
            output, mask = generate_batch(model, x, task, seed, start, lambda fraction, start=start, count=len(x):
                                          bar.update(start + int(fraction * count) - bar.n))
            start += len(x)
            bar.update(start - bar.n)
            yield x, output, mask


@torch.no_grad()
def generate_batch(model: I2IModel, x: torch.Tensor, task: TaskConfig, seed: int, start: int,
                   progress: Callable[[float], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs, masks) of one batch of a set whose first image sits at position `start`: its masks and sampling
    randomness come from (seed, start) alone. `progress` is told the finished fraction of the batch (a sampler)."""
    model.eval()
    generator = torch.Generator().manual_seed(seed * 1_000_003 + start)
    mask = make_mask(task, len(x), x.shape[-1], model.mask_grid, generator)
    model.progress_callback = progress
    try:
        return model.generate(x, mask, generator), mask
    finally:
        model.progress_callback = None


def hidden_mse(outputs: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor) -> float:
    """Mean squared error over the hidden pixels only (visible pixels are pasted back)."""
    error = ((outputs - truth) ** 2 * masks).sum() / (masks.sum() * outputs.shape[1])
    return float(error)


def hidden_error_sums(outputs: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor) -> tuple[float, float]:
    """hidden_mse's numerator and denominator for one batch: summed over batches, their ratio is the set's."""
    return float(((outputs - truth) ** 2 * masks).sum()), float(masks.sum() * outputs.shape[1])
