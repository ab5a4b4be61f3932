"""Masked autoencoder family on transformers' ViTMAEForPreTraining.

E = the ViT encoder over the visible patches (`net.vit`), D = the MAE decoder (`net.decoder`).
The task mask is imposed through ViTMAE's `noise` argument: patches are kept in ascending
noise order, so visible patches get low noise and hidden ones high noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import ViTMAEConfig, ViTMAEForPreTraining
from transformers.models.vit_mae.modeling_vit_mae import build_2d_sinusoidal_position_embedding

from i2i_unlearn.errors import UserError
from i2i_unlearn.models.base import I2IModel, keep_visible, register_model


@dataclass
class MAEConfig:
    image_size: int = 32
    channels: int = 1
    patch_size: int = 4
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    decoder_hidden_size: int = 128
    decoder_num_layers: int = 2
    decoder_num_heads: int = 4
    decoder_intermediate_size: int = 512
    # How the linear layers start: "xavier" (xavier-uniform weights, zero biases) is what the MAE
    # paper's code does; "transformers" is ViTMAE's normal(0, 0.02). With the small normal init the
    # attention starts uniform and training can sit for thousands of steps on the mean-image
    # plateau (thin strokes: benchmarks/results/mae_plateau.md). Models saved before say nothing
    # and keep "transformers".
    linear_init: str = "transformers"


def _sincos(num_patches: int, dim: int) -> torch.Tensor:
    grid = int(num_patches ** 0.5)
    return build_2d_sinusoidal_position_embedding(grid, grid, dim, cls_token=True).unsqueeze(0)


@register_model
class MAEModel(I2IModel):
    """Masked autoencoder (transformers ViTMAE): E = ViT encoder over visible patches, D = MAE decoder."""
    family = "mae"
    config_class = MAEConfig

    def __init__(self, config: MAEConfig):
        super().__init__(config)
        if config.image_size % config.patch_size:
            raise UserError(f"image_size {config.image_size} is not a multiple of patch_size {config.patch_size}")
        self.net = ViTMAEForPreTraining(ViTMAEConfig(
            image_size=config.image_size, patch_size=config.patch_size, num_channels=config.channels,
            hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads, intermediate_size=config.intermediate_size,
            decoder_hidden_size=config.decoder_hidden_size, decoder_num_hidden_layers=config.decoder_num_layers,
            decoder_num_attention_heads=config.decoder_num_heads,
            decoder_intermediate_size=config.decoder_intermediate_size,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, norm_pix_loss=False))
        if config.linear_init == "xavier":
            for module in self.net.modules():
                if isinstance(module, torch.nn.Linear):
                    torch.nn.init.xavier_uniform_(module.weight)
                    torch.nn.init.zeros_(module.bias)
        elif config.linear_init != "transformers":
            raise UserError(f"unknown linear_init {config.linear_init!r}; available: xavier, transformers")
        # transformers 5.x leaves these fixed sine-cosine embeddings at zero when a model is
        # built from a config: the model would be blind to position. Fill them here.
        num_patches = self.num_patches
        with torch.no_grad():
            self.net.vit.embeddings.position_embeddings.copy_(_sincos(num_patches, config.hidden_size))
            self.net.decoder.decoder_pos_embed.copy_(_sincos(num_patches, config.decoder_hidden_size))

    def enable_gradient_checkpointing(self) -> None:
        # transformers recomputes each ViT layer (encoder and decoder) in train mode; non-reentrant by default, so a
        # frozen part passes gradients through
        self.net.activation_checkpointing_enable()

    @property
    def num_patches(self) -> int:
        return (self.config.image_size // self.config.patch_size) ** 2

    @property
    def encoder(self):
        return self.net.vit

    @property
    def decoder(self):
        return self.net.decoder

    @property
    def mask_grid(self) -> int:
        return self.config.image_size // self.config.patch_size

    @property
    def image_shape(self):
        return (self.config.channels, self.config.image_size, self.config.image_size)

    def _patch_noise(self, mask: torch.Tensor) -> torch.Tensor:
        """ViTMAE `noise` that keeps exactly the visible patches (in raster order)."""
        p = self.config.patch_size
        hidden = torch.nn.functional.max_pool2d(mask, p)
        if not torch.equal(hidden, torch.nn.functional.avg_pool2d(mask, p)):
            raise UserError(f"the mask does not follow the model's {self.mask_grid}x{self.mask_grid} patch grid")
        hidden = hidden.flatten(1)  # (B, L), 1 = hidden patch
        counts = hidden.sum(dim=1)
        if not torch.all(counts == counts[0]):
            raise UserError("every image of a batch must hide the same number of patches")
        n_hidden = int(counts[0])
        if not 0 < n_hidden < hidden.shape[1]:
            raise UserError(f"a mask must hide some but not all patches (hides {n_hidden} of {hidden.shape[1]})")
        # ViTMAE keeps int(L * (1 - mask_ratio)) patches; the half-patch offset makes that exact.
        self.net.config.mask_ratio = (n_hidden - 0.5) / hidden.shape[1]
        order = torch.arange(hidden.shape[1], device=mask.device) / hidden.shape[1]
        return hidden + 0.5 * order  # hidden patches sort after every visible one

    def encode(self, x, mask, ctx=None):
        return self.net.vit(x * 2 - 1, noise=self._patch_noise(mask)).last_hidden_state

    def _decode(self, latent, mask):
        noise = self._patch_noise(mask)
        ids_restore = torch.argsort(torch.argsort(noise, dim=1), dim=1)
        return self.net.decoder(latent, ids_restore).logits

    def predict(self, x, mask, ctx=None):
        """Pixel predictions for every patch, (B, L, p*p*C), in the normalised space [-1, 1]."""
        return self._decode(self.encode(x, mask), mask)

    def decode(self, features, x, mask, ctx=None):
        return self._decode(features, mask)

    def training_loss(self, x, mask, ctx=None, target=None):
        prediction = self.predict(x, mask)
        target = self.net.patchify((x if target is None else target) * 2 - 1)
        hidden = torch.nn.functional.max_pool2d(mask, self.config.patch_size).flatten(1)
        per_patch = ((prediction - target) ** 2).mean(dim=-1)
        return (per_patch * hidden).sum() / hidden.sum()

    @torch.no_grad()
    def generate(self, x, mask, generator=None):
        pixels = self.net.unpatchify(self.predict(x, mask))
        pixels = ((pixels + 1) / 2).clamp(0, 1)
        return keep_visible(x, mask, pixels)
