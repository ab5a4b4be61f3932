"""The model protocol every family implements, the registry, and save/load.

Every method and metric talks only to this protocol: output = D(E(T(x))).
Images are float tensors in [0, 1], (B, C, H, W); masks are (B, 1, H, W), 1 = hidden.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from i2i_unlearn.checkpoints import WEIGHTS_NAME, read_config_dir, read_weights_dir, save_weights_dir
from i2i_unlearn.config import from_dict
from i2i_unlearn.errors import UserError

MODELS: dict[str, type["I2IModel"]] = {}


def register_model(cls):
    MODELS[cls.family] = cls
    return cls


class I2IModel(nn.Module):
    """Base of every family. Subclasses set `family`, `config_class`, and implement the methods."""
    family: ClassVar[str]
    config_class: ClassVar[type]
    prediction_is_restoration: ClassVar[bool] = True   # predict() gives the restoration (False: `restored` does)

    def __init__(self, config):
        super().__init__()
        self.config = config

    # --- the parts encoder-only methods tune and freeze -----------------------------------
    @property
    def encoder(self) -> nn.Module:
        raise NotImplementedError

    @property
    def decoder(self) -> nn.Module:
        raise NotImplementedError

    @property
    def mask_grid(self) -> int:
        """Cells per side that task masks snap to (patch or token grid)."""
        raise NotImplementedError

    @property
    def image_shape(self) -> tuple[int, int, int]:
        raise NotImplementedError

    def init_pretrained_parts(self) -> None:
        """Load parts a fresh model starts from (a trained VQ tokenizer); build_model calls it,
        load_model does not (the saved weights hold those parts)."""

    @property
    def sampling_steps(self) -> int | None:
        """Network passes of one generate() (DDIM or MaskGIT steps); None for a single pass."""
        return None

    def frozen_modules(self) -> list[nn.Module]:
        """Parts no method may train (e.g. a VQ tokenizer)."""
        return []

    def enable_gradient_checkpointing(self) -> None:
        """Recompute the activations of the network's blocks (the encoder's and the decoder's) in the backward pass
        instead of keeping them: less memory per step, more time, the same gradients. For the model being trained
        only; a frozen teacher computes no gradients. A family on a transformers or diffusers network uses that
        library's switch; here, the family's own blocks that have a `checkpointing` switch (the vqgan family's)."""
        blocks = [module for module in self.modules() if hasattr(module, "checkpointing")]
        if not blocks:
            raise UserError(f"the {self.family} family does not offer gradient checkpointing")
        for block in blocks:
            block.checkpointing = True

    def share_caches_with(self, other: "I2IModel") -> None:
        """Use `other`'s caches of what its frozen parts compute (a student and its teacher: the vqgan family's
        tokens), so neither computes them again. Nothing to share by default."""

    # --- the protocol -------------------------------------------------------------------
    def sample_context(self, x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator) -> dict[str, Any]:
        """Randomness teacher and student must share (token drops, timestep, diffusion noise).
        Drawn for the step's global batch; tensors whose first dimension is the batch are per image and
        are cut to a process's rows under many processes, and the loops add `ctx["shard"]` (which rows:
        i2i_unlearn.distributed.Shard) for a loss that is not a mean of equal per-image terms."""
        return {}

    def encode(self, x, mask, ctx) -> torch.Tensor | list[torch.Tensor]:
        """E(T(x)): the encoder's output (a list of feature maps for U-Nets)."""
        raise NotImplementedError

    def encode_fresh(self, x, mask, ctx) -> torch.Tensor | list[torch.Tensor]:
        """`encode` for images seen once (fresh noise): a family that caches per image (the VQ-GAN's
        tokens) skips its cache, which they would only push the dataset's images out of."""
        return self.encode(x, mask, ctx)

    def encode_noise(self, x, noise_image, mask, ctx) -> torch.Tensor | list[torch.Tensor]:
        """E0(T(n)) for forget images x: what `ours` pulls their encodings to. By default the noise
        image under the forget images' mask and randomness; a family may build it differently
        (the diffusion family keeps x's known pixels and puts pure noise in the hole)."""
        return self.encode_fresh(noise_image, mask, ctx)

    def predict(self, x, mask, ctx) -> torch.Tensor:
        """The differentiable output the family's training loss compares (pixels, noise, token logits)."""
        raise NotImplementedError

    def decode(self, features, x, mask, ctx) -> torch.Tensor:
        """D alone: predict()'s output from given encoder features of x (predict = decode(encode(x)));
        lets a method feed the decoder another model's encodings. Optional: a family without it says so."""
        raise NotImplementedError(f"the {self.family} family cannot decode given features")

    def training_loss(self, x, mask, ctx, target=None) -> torch.Tensor:
        """The family's own loss; `target` replaces x as what the hidden region should become."""
        raise NotImplementedError

    def restored(self, x, mask, ctx) -> torch.Tensor | None:
        """The one-pass output as a restored image in [0, 1], for families whose predict() is not one
        (diffusion predicts noise). None: predict()'s output is the restoration and compares directly."""
        return None

    def noise_target(self, images, noise_image, generator) -> torch.Tensor:
        """What `noisy-label` asks the hidden region to become: the noise image, for pixel models."""
        return noise_image

    def generate(self, x, mask, generator: torch.Generator | None = None) -> torch.Tensor:
        """The I2I output in [0, 1]; visible pixels are exactly those of x. An iterative sampler calls
        `sampling_progress` after each of its steps (optional: progress bars then move inside a batch)."""
        raise NotImplementedError

    # set by generation.generate_outputs while it runs: told the finished fraction of the current batch
    progress_callback = None

    def sampling_progress(self, fraction: float) -> None:
        if self.progress_callback is not None:
            self.progress_callback(fraction)

    # --- save / load ----------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, extra: dict | None = None) -> None:
        """config.json (family, model config, weight hash, `extra` provenance) + model.safetensors."""
        save_weights_dir(directory, self.state_dict(),
                         {"family": self.family, "model": dataclasses.asdict(self.config), **(extra or {})})

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "I2IModel":
        return load_model(directory, family=cls.family)


def keep_visible(x: torch.Tensor, mask: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """The model's output in the hidden region, x's own pixels everywhere else (every generate ends so)."""
    return torch.where(mask.bool().expand_as(x), output, x)


def read_model_config(directory: str | Path) -> dict:
    info = read_config_dir(directory, "model")
    if info.get("kind") == "evaluator":
        raise UserError(f"{directory} is an evaluator folder, not a model: pass it as --evaluator")
    if info.get("family") == "vq-tokenizer":
        raise UserError(f"{directory} is a VQ tokenizer folder, not a model: a vqgan model names it as its "
                        "tokenizer_path")
    if "family" not in info and ("_class_name" in info or "architectures" in info):
        raise UserError(f"{directory} is a Hugging Face checkpoint folder, not an i2i-unlearn model: wrap it with "
                        "`i2i-unlearn import`")
    if info.get("family") not in MODELS:
        raise UserError(f"{directory}: unknown model family {info.get('family')!r}; available: {', '.join(MODELS)}")
    return info


def load_model(directory: str | Path, family: str | None = None) -> I2IModel:
    """Load any registered family from a directory written by `save_pretrained`."""
    info = read_model_config(directory)
    if family is not None and info["family"] != family:
        raise UserError(f"{directory} holds a {info['family']} model, not a {family} model")
    state = read_weights_dir(directory, info)
    cls = MODELS[info["family"]]
    model = cls(from_dict(cls.config_class, info["model"], " model"))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{Path(directory) / WEIGHTS_NAME} does not fit a {cls.family} model of this config: "
                        f"{str(exc).splitlines()[0]}") from None
    model.pretrained_info = info
    return model


def build_model(model_config: dict) -> I2IModel:
    """A fresh, randomly initialised model from a config dict with a `family` key."""
    values = dict(model_config)
    family = values.pop("family", None)
    if family not in MODELS:
        raise UserError(f"unknown model family {family!r}; available: {', '.join(MODELS)}")
    cls = MODELS[family]
    model = cls(from_dict(cls.config_class, values, " model"))
    model.init_pretrained_parts()
    return model
