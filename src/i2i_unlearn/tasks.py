"""The I2I degradations T (as masks) and the noise images the forget set is mapped to.

A mask is a float tensor (B, 1, H, W): 1 where a pixel is hidden, 0 where it is visible.
Masks snap to a grid of `grid` x `grid` cells (a model's patch or token grid); a hole is
rounded outward, a visible center inward, so no partly visible cell exists.
"""
from __future__ import annotations

import math

import torch

from i2i_unlearn.config import TaskConfig
from i2i_unlearn.errors import UserError

TASKS = ("center-inpaint", "outpaint", "random-patches")
NOISE_TYPES = ("batch-gaussian", "standard-gaussian", "uniform")


def check_task(task: TaskConfig) -> None:
    if task.name not in TASKS:
        raise UserError(f"unknown task {task.name!r}; available: {', '.join(TASKS)}")
    if not 0 < task.ratio < 1:
        raise UserError(f"the {task.name} ratio must be in (0, 1), got {task.ratio}")


def _center_cells(grid: int, side: int) -> slice:
    start = (grid - side) // 2
    return slice(start, start + side)


def make_mask(task: TaskConfig, batch_size: int, image_size: int, grid: int,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Mask of `task` for a batch; every sample hides the same number of cells."""
    check_task(task)
    if image_size % grid:
        raise UserError(f"image size {image_size} is not a multiple of the mask grid {grid}")
    cells = torch.zeros(batch_size, grid * grid)
    if task.name == "center-inpaint":
        side = min(grid, math.ceil(task.ratio * grid - 1e-9))
        hole = torch.zeros(grid, grid)
        hole[_center_cells(grid, side), _center_cells(grid, side)] = 1
        cells[:] = hole.flatten()
    elif task.name == "outpaint":
        side = max(1, math.floor(task.ratio * grid + 1e-9))
        hidden = torch.ones(grid, grid)
        hidden[_center_cells(grid, side), _center_cells(grid, side)] = 0
        cells[:] = hidden.flatten()
    else:  # random-patches
        n_hidden = max(1, round(task.ratio * grid * grid))
        order = torch.rand(batch_size, grid * grid, generator=generator).argsort(dim=1)
        cells.scatter_(1, order[:, :n_hidden], 1.0)
    cell = image_size // grid
    cells = cells.view(batch_size, 1, grid, grid)
    return cells.repeat_interleave(cell, dim=2).repeat_interleave(cell, dim=3)


def pick(options: list, generator: torch.Generator):
    """One of `options`, drawn with the step's generator (a task per batch, a fill per batch)."""
    return options[int(torch.randint(len(options), (1,), generator=generator))]


def degrade(images: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """T(x): hidden pixels replaced by `fill` (a value or an image broadcastable to x)."""
    return images * (1 - mask) + mask * fill


def noise_image(images: torch.Tensor, kind: str, generator: torch.Generator | None = None,
                moments: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """A noise image per input image, in the [0, 1] pixel space of the data.

    batch-gaussian: Gaussian with the batch's per-channel mean and std, clamped to [0, 1]
        (what the released code does; the default). `moments`: the (mean, std) of a whole set that `images`
        is one batch of (ImageSource.channel_moments), so a set drawn batch by batch gets the whole set's noise.
    standard-gaussian: N(0, I) in the models' normalised space [-1, 1], i.e. 0.5 + 0.5 * N(0, 1)
        here, not clamped (the paper's appendix, Sigma = I).
    uniform: U(0, 1) per pixel.
    """
    if kind not in NOISE_TYPES:
        raise UserError(f"unknown noise type {kind!r}; available: {', '.join(NOISE_TYPES)}")
    gaussian = torch.randn(images.shape, generator=generator).to(images)
    if kind == "batch-gaussian":
        mean, std = moments or (images.mean(dim=(0, 2, 3), keepdim=True), images.std(dim=(0, 2, 3), keepdim=True))
        return (gaussian * std + mean).clamp(0, 1)
    if kind == "standard-gaussian":
        return 0.5 + 0.5 * gaussian
    return torch.rand(images.shape, generator=generator).to(images)
