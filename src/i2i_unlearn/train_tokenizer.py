"""Training the VQ tokenizer of the vqgan family as a VQ-GAN: `i2i-unlearn train-tokenizer`.

Losses: L1 + MSE reconstruction, the VQ codebook/commitment loss, and (after a warm-up) a hinge
adversarial loss from a small patch discriminator. Codes unused for a while are re-initialised
from the batch's encoder outputs: without that the codebook collapses to a few codes within
tens of steps (architecture.md). The discriminator is a training-time part only: the saved
tokenizer directory holds the VQModel alone.

Under many processes every process keeps its rows of the global batch; the code usage counts are
summed over the processes and a restart picks from the global batch's encoder outputs, with the
shared generator, so every process restarts the same codes with the same vectors (those of one process).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from i2i_unlearn.config import TokenizerTrainConfig, from_dict, to_dict
from i2i_unlearn.data import ImageSource, open_split, select_classes
from i2i_unlearn.distributed import WHOLE, Shard, on_main_process
from i2i_unlearn.errors import UserError
from i2i_unlearn.loop import check_global_batch, make_accelerator, resumed_wall_time, run_loop
from i2i_unlearn.models.vqgan import VQTokenizer, VQTokenizerConfig
from i2i_unlearn.runs import prepare_output_dir
from i2i_unlearn.train import save_trained, verdict


class PatchDiscriminator(nn.Module):
    """Real/fake logits per image patch (PatchGAN, two stride-2 convolutions)."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.GroupNorm(8, 2 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class TokenizerObjective(nn.Module):
    """One VQ-GAN step. Tokenizer and discriminator share one optimiser: the generator's
    adversarial term runs the discriminator with detached weights, and the discriminator's term
    sees detached reconstructions, so each loss only moves its own side."""

    def __init__(self, tokenizer: VQTokenizer, config: TokenizerTrainConfig):
        super().__init__()
        self.tokenizer = tokenizer
        self.config = config
        self.discriminator = PatchDiscriminator(tokenizer.config.channels, config.discriminator_width)
        codebook_size = tokenizer.config.codebook_size
        self.register_buffer("code_usage", torch.full((codebook_size,), 1.0 / codebook_size))

    @torch.no_grad()
    def _restart_dead_codes(self, latents: torch.Tensor, generator: torch.Generator, shard: Shard = WHOLE) -> None:
        dead = torch.nonzero(self.code_usage < self.config.dead_code_threshold / len(self.code_usage)).flatten()
        if len(dead) == 0:
            return
        latents = shard.gather(latents)   # the global batch's, in its order, on every process
        vectors = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
        pick = torch.randint(len(vectors), (len(dead),), generator=generator).to(vectors.device)
        self.tokenizer.vq.quantize.embedding.weight[dead] = vectors[pick]
        self.code_usage[dead] = 1.0 / len(self.code_usage)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        config, vq = self.config, self.tokenizer.vq
        shard = batch.get("shard", WHOLE)
        images = shard.take(batch["images"], len(batch["images"])).to(self.code_usage.device) * 2 - 1
        latents = vq.encode(images).latents
        self._restart_dead_codes(latents, batch["generator"], shard)
        quantized, vq_loss, (_, _, indices) = vq.quantize(latents)
        with torch.no_grad():   # the global batch's code usage: the same on every process
            counts = shard.sum(torch.bincount(indices.flatten(), minlength=len(self.code_usage)).float())
            self.code_usage.mul_(config.usage_decay).add_((1 - config.usage_decay) * counts / counts.sum())
        reconstruction = self.tokenizer.decode_latents(quantized)
        rec_loss = config.l1_weight * F.l1_loss(reconstruction, images) + F.mse_loss(reconstruction, images)
        terms = {"reconstruction": rec_loss, "vq": vq_loss, "codes_used": (counts > 0).sum().float()}
        loss = rec_loss + vq_loss
        if config.adversarial and batch["step"] >= config.adversarial_start:
            frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
            generator_loss = -functional_call(self.discriminator, frozen, (reconstruction,)).mean()
            disc_loss = (F.relu(1 - self.discriminator(images)).mean()
                         + F.relu(1 + self.discriminator(reconstruction.detach())).mean())
            loss = loss + config.adversarial_weight * generator_loss + disc_loss
            terms |= {"generator": generator_loss, "discriminator": disc_loss}
        return {"loss": loss, **terms}


@torch.no_grad()
def reconstruction_check(tokenizer: VQTokenizer, val_images: ImageSource, train_images: ImageSource) -> dict | None:
    """The tokenizer's reconstruction error on validation images against the mean image's, read batch by batch."""
    if len(val_images) == 0:
        return None
    mean_image = train_images.mean_image()
    model_sum = fill_sum = 0.0
    for batch in val_images.batches(128):
        truth = batch.images
        model_sum += float(((tokenizer.detokenize(tokenizer.tokenize(truth)) - truth) ** 2).sum())
        fill_sum += float(((mean_image - truth) ** 2).sum())
    values = len(val_images) * math.prod(val_images.image_shape)
    model_mse, fill_mse = model_sum / values, fill_sum / values
    return verdict({"count": len(val_images), "reconstruction_mse": round(model_mse, 5),
                     "mean_image_mse": round(fill_mse, 5)}, model_mse, fill_mse, "reconstruction error")


def train_tokenizer(config: TokenizerTrainConfig, out_dir: str | Path, *, resume: bool = False,
                    overwrite: bool = False) -> VQTokenizer:
    """Train a VQ tokenizer on `config.data`'s train split and save it (without discriminator)."""
    started = time.time()
    accelerator = make_accelerator()
    check_global_batch(accelerator, batch_size=config.batch_size)
    out_dir = prepare_output_dir(out_dir, overwrite=overwrite, resume=resume)
    earlier_wall_time = resumed_wall_time(out_dir) if resume else 0.0
    split = open_split(config.data)   # an image folder's parts stay on disk
    train_images = select_classes(split.train, config.classes)
    if len(train_images) == 0:
        raise UserError("no training images")
    tokenizer_config = from_dict(VQTokenizerConfig, config.tokenizer, " tokenizer")
    if (tokenizer_config.channels, tokenizer_config.image_size) != (config.data.channels, config.data.image_size):
        raise UserError("tokenizer.channels/image_size must match data.channels/image_size")
    torch.manual_seed(config.seed)
    tokenizer = VQTokenizer(tokenizer_config)
    objective = TokenizerObjective(tokenizer, config)

    def make_batch(step: int, generator: torch.Generator) -> dict:
        index = torch.randperm(len(train_images), generator=generator)[:config.batch_size]
        return {"images": train_images.load(index), "step": step, "generator": generator}

    log = run_loop(objective=objective, module=objective, optim=config.optim, steps=config.steps, seed=config.seed,
                   make_batch=make_batch, run_dir=out_dir, checkpoint_every=config.checkpoint_every,
                   log_every=config.log_every, resume=resume, description="train tokenizer",
                   accelerator=accelerator, config=to_dict(config), started=started)
    on_main_process(lambda: save_trained(tokenizer, out_dir, "train-tokenizer", config, train_images, log, started,
                                         {"split": split.describe()},
                                         reconstruction_check(tokenizer.eval(), split.val, train_images),
                                         world_size=accelerator.num_processes, earlier_wall_time_s=earlier_wall_time))
    return tokenizer
