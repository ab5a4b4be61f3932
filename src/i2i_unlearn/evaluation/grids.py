"""Image grids: one row per image kind (input, each model's output, ground truth)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from i2i_unlearn.checkpoints import atomic_write

HIDDEN_TINT = (0.55, 0.15, 0.15)   # how the hidden region of an input is drawn


def show_input(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The degraded input as RGB, the hidden region tinted so it cannot be mistaken for black."""
    rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    tint = torch.tensor(HIDDEN_TINT).view(1, 3, 1, 1)
    return rgb * (1 - masks) + tint * masks


def image_grid(rows: list[tuple[str, torch.Tensor]], path: str | Path, scale: int = 3, label_width: int = 110) -> Path:
    """Save a PNG: each row is (label, images (N, C, H, W) in [0, 1]), N images side by side."""
    n, h, w = rows[0][1].shape[0], rows[0][1].shape[2] * scale, rows[0][1].shape[3] * scale
    pad = 2
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))   # wide enough for the longest label (e.g. a like-retrained row)
    label_width = max(label_width, 8 + max(round(measure.textlength(label)) for label, _ in rows))
    canvas = Image.new("RGB", (label_width + n * (w + pad), len(rows) * (h + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, images) in enumerate(rows):
        images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        draw.text((4, r * (h + pad) + h // 2 - 6), label, fill="black")
        for c in range(images.shape[0]):
            array = (images[c].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            tile = Image.fromarray(array).resize((w, h), Image.NEAREST)
            canvas.paste(tile, (label_width + c * (w + pad), r * (h + pad)))
    path = Path(path)
    atomic_write(path, lambda tmp: canvas.save(tmp, format="PNG"))
    return path
