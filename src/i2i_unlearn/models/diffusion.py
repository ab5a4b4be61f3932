"""Palette-style conditional diffusion family on diffusers' UNet2DModel.

The U-Net sees [degraded image, noisy image] as input channels: the degraded image has its
hidden region filled with N(0, I) noise, the noisy image is the target diffused to timestep t
in the hidden region and the clean known pixels outside it (Palette's inpainting setup).
It predicts the diffusion noise; the loss counts the hidden region only.

E = conv_in + down blocks + middle block; encode() returns every skip feature map and the
middle-block output. D = the up path and output layers, with the time embedding: it feeds
the up path too, so encoder-only methods keep it frozen (method.md section 2).
Work happens in the normalised space [-1, 1]; the protocol's images are in [0, 1].
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch
from torch import nn

from i2i_unlearn.errors import UserError
from i2i_unlearn.models.base import I2IModel, keep_visible, register_model


@dataclass
class DiffusionConfig:
    image_size: int = 32
    channels: int = 1
    # Sized for 2 CPU cores: 0.64M parameters, 0.55 s per training step of 64 images. Attention
    # only in the middle block (UNet2DModel's default there) keeps the hole's context global.
    block_out_channels: tuple[int, ...] = (16, 32, 64)
    down_block_types: tuple[str, ...] = ("DownBlock2D", "DownBlock2D", "DownBlock2D")
    up_block_types: tuple[str, ...] = ("UpBlock2D", "UpBlock2D", "UpBlock2D")
    layers_per_block: int = 1
    norm_num_groups: int = 8
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    sampler_steps: int = 20           # DDIM steps of generate(); the evaluation records it
    mask_grid: int = 8                # cells per side task masks snap to (any pixel mask works)
    # Any other UNet2DModel settings, passed as they are: an imported U-Net (import_pretrained.py)
    # brings its own (attention_head_dim, act_fn, norm_eps, ...); the family's own models use none.
    unet_options: dict = field(default_factory=dict)


# The UNet2DModel settings the family sets itself, from the fields above.
FAMILY_UNET_KEYS = ("sample_size", "in_channels", "out_channels", "block_out_channels", "down_block_types",
                    "up_block_types", "layers_per_block", "norm_num_groups")


def unsupported_unet_settings(config: DiffusionConfig) -> list[str]:
    """UNet2DModel settings that the family's forward, split at the middle block, does not compute."""
    options, found = config.unet_options, []
    if options.get("time_embedding_type", "positional") != "positional":
        found.append(f"time_embedding_type {options['time_embedding_type']!r} (only 'positional')")
    if options.get("class_embed_type") is not None or options.get("num_class_embeds") is not None:
        found.append("class conditioning (class_embed_type / num_class_embeds)")
    if options.get("center_input_sample"):
        found.append("center_input_sample (the family's inputs are already in [-1, 1])")
    if "mid_block_type" in options and options["mid_block_type"] is None:
        found.append("no middle block (mid_block_type null)")
    skip_blocks = [name for name in (*config.down_block_types, *config.up_block_types) if "Skip" in name]
    if skip_blocks:
        found.append(f"skip blocks ({', '.join(skip_blocks)})")
    return found


@register_model
class DiffusionModel(I2IModel):
    """Palette-style diffusion (diffusers UNet2DModel, DDPM training, DDIM sampling): E = down path + middle block."""
    family = "diffusion"
    prediction_is_restoration = False   # it predicts noise
    config_class = DiffusionConfig

    def __init__(self, config: DiffusionConfig):
        super().__init__(config)
        from diffusers import DDPMScheduler, UNet2DModel   # here, not at the top: importing diffusers takes ~5 s
        if config.image_size % config.mask_grid:
            raise UserError(f"image_size {config.image_size} is not a multiple of mask_grid {config.mask_grid}")
        known = set(inspect.signature(UNet2DModel.__init__).parameters) - {"self", *FAMILY_UNET_KEYS}
        if set(config.unet_options) - known:
            raise UserError(f"model.unet_options: unknown key(s) {', '.join(sorted(set(config.unet_options) - known))}; "
                            f"known: {', '.join(sorted(known))}")
        unsupported = unsupported_unet_settings(config)
        if unsupported:
            raise UserError(f"the diffusion family cannot run a U-Net with {'; '.join(unsupported)}")
        self.unet = UNet2DModel(
            sample_size=config.image_size, in_channels=2 * config.channels, out_channels=config.channels,
            block_out_channels=tuple(config.block_out_channels), down_block_types=tuple(config.down_block_types),
            up_block_types=tuple(config.up_block_types), layers_per_block=config.layers_per_block,
            norm_num_groups=config.norm_num_groups, **config.unet_options)
        self.train_scheduler = DDPMScheduler(num_train_timesteps=config.num_train_timesteps,
                                             beta_schedule=config.beta_schedule)

    def enable_gradient_checkpointing(self) -> None:
        # diffusers recomputes the resnets of every down, middle and up block while gradients are on; the family's
        # split forward calls those blocks, so the switch holds for encode() and decode() alike
        self.unet.enable_gradient_checkpointing()

    # --- parts ------------------------------------------------------------------------------
    @property
    def encoder(self):
        return nn.ModuleList([self.unet.conv_in, self.unet.down_blocks, self.unet.mid_block])

    @property
    def decoder(self):
        unet = self.unet
        return nn.ModuleList([unet.time_proj, unet.time_embedding, unet.up_blocks, unet.conv_norm_out, unet.conv_out])

    @property
    def mask_grid(self) -> int:
        return self.config.mask_grid

    @property
    def sampling_steps(self) -> int:
        return self.config.sampler_steps

    @property
    def image_shape(self):
        return (self.config.channels, self.config.image_size, self.config.image_size)

    # --- the U-Net in two halves (UNet2DModel.forward, split at the middle block) ---------------
    def _time_embedding(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.unet.time_embedding(self.unet.time_proj(timesteps).to(self.unet.dtype))

    def _encode_unet(self, unet_input, emb) -> list[torch.Tensor]:
        sample = self.unet.conv_in(unet_input)
        features = [sample]
        for block in self.unet.down_blocks:
            sample, res_samples = block(hidden_states=sample, temb=emb)
            features.extend(res_samples)
        return features + [self.unet.mid_block(sample, emb)]

    def _decode_unet(self, features, emb) -> torch.Tensor:
        skips, sample = list(features[:-1]), features[-1]
        for block in self.unet.up_blocks:
            res_samples, skips = skips[-len(block.resnets):], skips[:-len(block.resnets)]
            sample = block(sample, tuple(res_samples), emb)
        return self.unet.conv_out(self.unet.conv_act(self.unet.conv_norm_out(sample)))

    # --- inputs -----------------------------------------------------------------------------
    def sample_context(self, x, mask, generator):
        """The timestep, the diffusion noise and the conditioning fill: shared by teacher and student."""
        b = x.shape[0]
        timesteps = torch.randint(self.config.num_train_timesteps, (b,), generator=generator)
        return {"timesteps": timesteps.to(x.device),
                "eps": torch.randn(x.shape, generator=generator).to(x),
                "fill": torch.randn(x.shape, generator=generator).to(x)}

    def _condition(self, x, mask, fill):
        """The degraded image: known pixels, N(0, I) in the hole (normalised space)."""
        return (x * 2 - 1) * (1 - mask) + fill * mask

    def _noisy(self, x0, mask, ctx):
        """x0 diffused to t in the hole; the known pixels of x0 outside it."""
        noisy = self.train_scheduler.add_noise(x0, ctx["eps"], ctx["timesteps"].cpu()).to(x0)
        return noisy * mask + x0 * (1 - mask)

    def unet_input(self, x, mask, ctx, target=None):
        """[degraded image, noisy image]; `target` (in [0, 1]) replaces x inside the hole."""
        x0 = x if target is None else x * (1 - mask) + target * mask
        return torch.cat([self._condition(x, mask, ctx["fill"]), self._noisy(x0 * 2 - 1, mask, ctx)], dim=1)

    def noise_input(self, x, mask, ctx):
        """The released code's teacher input for forget images: pure N(0, I) in the hole of the
        noisy image at every timestep (the context's eps), the known pixels outside it."""
        noisy = ctx["eps"] * mask + (x * 2 - 1) * (1 - mask)
        return torch.cat([self._condition(x, mask, ctx["fill"]), noisy], dim=1)

    # --- the protocol -----------------------------------------------------------------------
    def encode(self, x, mask, ctx):
        return self._encode_unet(self.unet_input(x, mask, ctx), self._time_embedding(ctx["timesteps"]))

    def encode_noise(self, x, noise_image, mask, ctx):
        return self._encode_unet(self.noise_input(x, mask, ctx), self._time_embedding(ctx["timesteps"]))

    def _predict_input(self, unet_input, timesteps):
        emb = self._time_embedding(timesteps)
        return self._decode_unet(self._encode_unet(unet_input, emb), emb)

    def predict(self, x, mask, ctx, target=None):
        """The predicted diffusion noise, (B, C, H, W)."""
        return self._predict_input(self.unet_input(x, mask, ctx, target), ctx["timesteps"])

    def decode(self, features, x, mask, ctx):
        return self._decode_unet(features, self._time_embedding(ctx["timesteps"]))

    def training_loss(self, x, mask, ctx, target=None):
        error = (self.predict(x, mask, ctx, target) - ctx["eps"]) ** 2
        return (error * mask).sum() / (mask.sum() * x.shape[1]).clamp(min=1)

    def restored(self, x, mask, ctx):
        """The clean image the predicted noise implies at the context's timestep (DDPM's x0 estimate),
        the known pixels outside the hole: what one denoising pass restores x to."""
        noisy = self._noisy(x * 2 - 1, mask, ctx)
        alpha_bar = self.train_scheduler.alphas_cumprod[ctx["timesteps"].cpu()].to(x).view(-1, 1, 1, 1)
        x0 = (noisy - (1 - alpha_bar).sqrt() * self.predict(x, mask, ctx)) / alpha_bar.sqrt()
        return (((x0 + 1) / 2).clamp(0, 1) * mask + x * (1 - mask))

    def noise_target(self, images, noise_image, generator):
        """noisy-label's target: pure N(0, I) noise in the normalised space (as [0, 1] pixels)."""
        return 0.5 + 0.5 * torch.randn(images.shape, generator=generator).to(images)

    @torch.no_grad()
    def generate(self, x, mask, generator=None):
        """DDIM sampling (eta 0) with `sampler_steps` steps; the known pixels are put back at every
        step, and the output keeps them exactly. Deterministic for a generator state."""
        from diffusers import DDIMScheduler
        scheduler = DDIMScheduler.from_config(self.train_scheduler.config)
        scheduler.set_timesteps(self.config.sampler_steps)
        known = x * 2 - 1
        condition = self._condition(x, mask, torch.randn(x.shape, generator=generator).to(x))
        sample = torch.randn(x.shape, generator=generator).to(x)
        for number, t in enumerate(scheduler.timesteps, start=1):
            sample = sample * mask + known * (1 - mask)
            timesteps = torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)
            eps = self._predict_input(torch.cat([condition, sample], dim=1), timesteps)
            sample = scheduler.step(eps, t, sample, eta=0.0).prev_sample
            self.sampling_progress(number / len(scheduler.timesteps))
        pixels = ((sample + 1) / 2).clamp(0, 1)
        return keep_visible(x, mask, pixels)
