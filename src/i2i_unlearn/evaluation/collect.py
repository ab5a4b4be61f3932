"""One pass over a held-out set of any size, for `evaluate` and the bench: batch by batch every model generates, the
evaluator sees the outputs (whole and hidden region), and only what the scores need stays, never the images: what
every image leaves (scoring.Streamed: feature moments, a few numbers per image) and the per-image feature rows
(scoring.Collected) of at most `interval_images` images, a seeded sample of positions chosen before the pass, the
same for every row. The few images a grid draws are picked by position before the pass too."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from i2i_unlearn.config import TaskConfig
from i2i_unlearn.data import ImageSource
from i2i_unlearn.evaluation.scoring import INTERVAL_IMAGES, Collected, Streamed, interval_positions
from i2i_unlearn.evaluation.targets import GROUND_TRUTH, MEAN_FILL
from i2i_unlearn.models.generation import GENERATION_BATCH, PROGRESS_DELAY_S, generate_batch
from i2i_unlearn.tasks import degrade, noise_image


@dataclass
class SetPass:
    """What one pass over a held-out set kept."""
    rows: dict[str, Collected]       # per model, and per reference row (mean-image fill, ground truth) if asked for
    truths: dict[str, Collected]     # per row: the ground truth collected under the same masks
    positions: torch.Tensor | None   # the set's positions the rows hold (interval_positions; None: every image)
    shown: dict[str, torch.Tensor]   # the kept images: each model's outputs, "truth", and "masks" (the last model's)
    seconds: dict[str, float]        # generation time per model


def collect_set(models: dict, images: ImageSource, task: TaskConfig, seed: int, evaluator, *, noise: bool,
                mean_image: torch.Tensor | None = None, keep: torch.Tensor | None = None,
                batch_size: int = GENERATION_BATCH, description: str = "generating",
                interval_images: int | None = INTERVAL_IMAGES) -> SetPass:
    """Every model's outputs for `images` (at least one image), collected batch by batch. A batch's masks and
    sampling randomness come from the seed and its position (generation.generate_batch), so nothing depends on the
    batches around it. `noise`: the outputs for noise inputs too, the set's noise drawn in order from one generator
    seeded `seed` with the set's channel statistics (what tasks.noise_image draws for the whole set at once).
    `mean_image`: the reference rows too, the mean-image fill and the ground truth, under the last model's masks.
    `keep`: positions of the images kept for grids (their inputs, masks and every model's outputs).
    `interval_images`: a set of more images keeps the rows of a sample of this many (interval_positions, seeded
    `seed`; None: every row, whatever the size); every image still counts in the rows' `streamed` statistics."""
    keep = torch.empty(0, dtype=torch.long) if keep is None else keep
    moments = images.channel_moments() if noise else None
    noise_generator = torch.Generator().manual_seed(seed)
    positions = interval_positions(len(images), interval_images, seed)
    parts = {name: [] for name in [*models, *((MEAN_FILL,) if mean_image is not None else ())]}
    truth_parts = {model.mask_grid: [] for model in models.values()}   # models of one grid get the same masks
    streamed = {name: Streamed() for name in parts}
    truth_streamed = {grid: Streamed() for grid in truth_parts}

    def kept_rows(collected: Collected, index: torch.Tensor) -> Collected:   # the batch's rows of sampled images
        return collected if positions is None else collected.take(torch.nonzero(torch.isin(index, positions)).flatten())
    shown = {name: [] for name in [*models, "truth", "masks"]}
    seconds = dict.fromkeys(models, 0.0)
    generations = len(images) * len(models) * (2 if noise else 1)
    with tqdm(total=generations, desc=description, unit="image", delay=PROGRESS_DELAY_S, leave=False,
              dynamic_ncols=True) as bar:
        def generate(model, x, start):
            done = bar.n   # a sampler moves the bar inside the batch
            result = generate_batch(model, x, task, seed, start,
                                    lambda fraction: bar.update(done + int(fraction * len(x)) - bar.n))
            bar.update(done + len(x) - bar.n)
            return result

        for batch in images.batches(batch_size):
            x, start = batch.images, int(batch.index[0])
            picked = torch.nonzero(torch.isin(batch.index, keep)).flatten()
            noise_inputs = noise_image(x, "batch-gaussian", noise_generator, moments) if noise else None
            truths = {}   # the ground truth under each mask grid
            for name, model in models.items():
                started = time.perf_counter()
                outputs, masks = generate(model, x, start)
                seconds[name] += time.perf_counter() - started
                noise_outputs = generate(model, noise_inputs, start)[0] if noise else None
                collected = Collected.of(evaluator, outputs, x, masks, noise_outputs)
                if model.mask_grid not in truths:
                    truths[model.mask_grid] = Collected.of(evaluator, x, x, masks)
                    truth_parts[model.mask_grid].append(kept_rows(truths[model.mask_grid], batch.index))
                    truth_streamed[model.mask_grid].add(truths[model.mask_grid], truths[model.mask_grid])
                parts[name].append(kept_rows(collected, batch.index))
                streamed[name].add(collected, truths[model.mask_grid])
                shown[name].append(outputs[picked])
            if mean_image is not None:
                collected = Collected.of(evaluator, degrade(x, masks, mean_image), x, masks)
                parts[MEAN_FILL].append(kept_rows(collected, batch.index))
                streamed[MEAN_FILL].add(collected, truths[model.mask_grid])
            shown["truth"].append(x[picked])
            shown["masks"].append(masks[picked])
    def finished(batches: list[Collected], every: Streamed) -> Collected:
        rows = Collected.cat(batches)
        rows.positions, rows.streamed = positions, every
        return rows
    rows = {name: finished(batches, streamed[name]) for name, batches in parts.items()}
    by_grid = {grid: finished(batches, truth_streamed[grid]) for grid, batches in truth_parts.items()}
    truth_rows = {name: by_grid[model.mask_grid] for name, model in models.items()}
    if mean_image is not None:   # the ground truth is its own reference row, under the last model's masks
        last = truth_rows[list(models)[-1]]
        rows[GROUND_TRUTH] = truth_rows[MEAN_FILL] = truth_rows[GROUND_TRUTH] = last
    return SetPass(rows, truth_rows, positions, {name: torch.cat(images) for name, images in shown.items()}, seconds)
