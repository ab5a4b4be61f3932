"""VQ-GAN family: a frozen VQ tokenizer (diffusers' VQModel) and a MAGE/MaskGIT-style token
transformer in plain PyTorch.

E = token embedding + positional embedding + encoder blocks, over the visible tokens only (hidden
positions are never attended to, and their outputs are zeroed). D = mask token + decoder blocks
+ token head, followed by the frozen VQ decoder. The head is a separate linear layer, not tied to
the token embedding, so an encoder-only method cannot move the decoder through shared weights.

No peeking through the tokenizer: the visible tokens are computed from the degraded image (the
hole filled with `hole_fill`), never from the full image, whose tokens would leak the hole
through the VQ encoder's receptive field. The full image's tokens are only the training targets.
A pixel hole is rounded outward to whole tokens: a token is visible only if all its pixels are.

The tokenizer is trained first with `i2i-unlearn train-tokenizer` (train_tokenizer.py: the VQ-GAN
losses and the patch discriminator, which is never part of this model).
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from i2i_unlearn.checkpoints import read_config_dir, read_weights_dir, save_weights_dir
from i2i_unlearn.config import from_dict
from i2i_unlearn.distributed import WHOLE
from i2i_unlearn.errors import UserError
from i2i_unlearn.models.base import I2IModel, keep_visible, register_model
from i2i_unlearn.tasks import degrade

TOKENIZER_FAMILY = "vq-tokenizer"
TOKEN_CACHE_SIZE = 65536  # images (about 35 MB of 8 x 8 tokens): a dataset's images, whole and degraded


# --- the tokenizer ---------------------------------------------------------------------------
@dataclass
class VQTokenizerConfig:
    image_size: int = 32
    channels: int = 1
    block_out_channels: tuple[int, ...] = (32, 64, 64)  # each block after the first halves the side
    layers_per_block: int = 1
    norm_num_groups: int = 16
    latent_channels: int = 16
    codebook_size: int = 64          # small: near-binary silhouettes need few codes, and the
    #                                  token transformer learns a small vocabulary much faster
    mid_block_attention: bool = True  # False keeps each token local (no global mixing in the VQ encoder),
    #                                  so a token describes its own patch, not the whole image


class VQTokenizer(nn.Module):
    """Images in [0, 1] <-> token indices (B, grid * grid) in raster order."""

    def __init__(self, config: VQTokenizerConfig):
        super().__init__()
        self.config = config
        from diffusers import VQModel   # here, not at the top: importing diffusers takes ~5 s
        n = len(config.block_out_channels)
        self.vq = VQModel(in_channels=config.channels, out_channels=config.channels,
                          down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
                          block_out_channels=tuple(config.block_out_channels),
                          layers_per_block=config.layers_per_block, latent_channels=config.latent_channels,
                          sample_size=config.image_size, num_vq_embeddings=config.codebook_size,
                          norm_num_groups=config.norm_num_groups, vq_embed_dim=config.latent_channels,
                          mid_block_add_attention=config.mid_block_attention)
        # diffusers keeps a historical bug by default (beta weights the codebook term instead of
        # the commitment term); legacy=False is the VQ-VAE loss as published.
        self.vq.quantize.legacy = False

    @property
    def grid(self) -> int:
        return self.config.image_size // 2 ** (len(self.config.block_out_channels) - 1)

    def quantize(self, x: torch.Tensor):
        """(quantized latents with straight-through gradient, VQ loss, indices (B, L))."""
        latents = self.vq.encode(x * 2 - 1).latents
        quantized, vq_loss, (_, _, indices) = self.vq.quantize(latents)
        return quantized, vq_loss, indices.view(x.shape[0], -1)

    def decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        """Pixels in the normalised space [-1, 1] (unclamped, for the training losses)."""
        return self.vq.decode(quantized, force_not_quantize=True).sample

    @torch.no_grad()
    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantize(x)[2]

    def detokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        g, dim = self.grid, self.config.latent_channels
        quantized = self.vq.quantize.get_codebook_entry(tokens.reshape(-1), (tokens.shape[0], g, g, dim))
        return ((self.decode_latents(quantized) + 1) / 2).clamp(0, 1)

    def save_pretrained(self, directory, extra: dict | None = None) -> None:
        save_weights_dir(directory, self.state_dict(),
                         {"family": TOKENIZER_FAMILY, "model": dataclasses.asdict(self.config), **(extra or {})})

    @staticmethod
    def read_config(directory) -> dict:
        info = read_config_dir(directory, "tokenizer")
        if info.get("family") != TOKENIZER_FAMILY:
            raise UserError(f"{directory} holds a {info.get('family')} model, not a VQ tokenizer "
                            "(train one with `i2i-unlearn train-tokenizer`)")
        return info

    @classmethod
    def from_pretrained(cls, directory) -> "VQTokenizer":
        info = cls.read_config(directory)
        tokenizer = cls(from_dict(VQTokenizerConfig, info["model"], " tokenizer"))
        tokenizer.load_state_dict(read_weights_dir(directory, info))
        return tokenizer


# --- the token transformer -------------------------------------------------------------------
class Block(nn.Module):
    """Pre-norm transformer block. One code path in training and inference (PyTorch's
    TransformerEncoderLayer switches to a fused path in eval mode whose numbers differ slightly,
    which would make the teacher and the student disagree at step 0)."""

    checkpointing = False   # I2IModel.enable_gradient_checkpointing: recompute the block in the backward pass

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))

    def forward(self, h: torch.Tensor, ignore: torch.Tensor | None = None) -> torch.Tensor:
        if self.checkpointing and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(self._forward, h, ignore, use_reentrant=False)
        return self._forward(h, ignore)

    def _forward(self, h: torch.Tensor, ignore: torch.Tensor | None) -> torch.Tensor:
        """`ignore` (B, L) bool: positions no token may attend to."""
        b, length, width = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        allowed = None if ignore is None else ~ignore[:, None, None, :]
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        h = h + self.proj(attended.transpose(1, 2).reshape(b, length, width))
        return h + self.mlp(self.norm2(h))


def _blocks(width: int, heads: int, mlp_ratio: int, layers: int) -> nn.ModuleList:
    return nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(layers))


class TokenEncoder(nn.Module):
    """Token embedding + positional embedding + blocks; attends to visible positions only."""

    def __init__(self, codebook_size: int, length: int, width: int, heads: int, mlp_ratio: int, layers: int):
        super().__init__()
        self.token_embedding = nn.Embedding(codebook_size, width)
        self.position = nn.Parameter(torch.randn(1, length, width) * 0.02)
        self.blocks = _blocks(width, heads, mlp_ratio, layers)
        self.norm = nn.LayerNorm(width)

    def forward(self, tokens: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
        h = self.token_embedding(tokens) + self.position
        for block in self.blocks:
            h = block(h, ignore=unknown)
        return self.norm(h).masked_fill(unknown.unsqueeze(-1), 0.0)


class TokenDecoder(nn.Module):
    """Mask token at unknown positions + positional embedding + blocks + token head (logits)."""

    def __init__(self, codebook_size: int, length: int, width: int, heads: int, mlp_ratio: int, layers: int):
        super().__init__()
        self.mask_token = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.position = nn.Parameter(torch.randn(1, length, width) * 0.02)
        self.blocks = _blocks(width, heads, mlp_ratio, layers)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, codebook_size)

    def forward(self, encoded: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
        h = torch.where(unknown.unsqueeze(-1), self.mask_token.to(encoded), encoded) + self.position
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))


# --- the family --------------------------------------------------------------------------------
@dataclass
class VQGANConfig:
    image_size: int = 32
    channels: int = 1
    tokenizer_path: str | None = None   # a `train-tokenizer` output loaded into a fresh model
    tokenizer: dict | None = None       # its VQTokenizerConfig (read from tokenizer_path when None)
    width: int = 128
    heads: int = 4
    mlp_ratio: int = 4
    encoder_layers: int = 4
    decoder_layers: int = 2
    hole_fill: float = 0.0              # pixel value the hole gets before the visible tokens are computed
    decode_steps: int = 8               # MaskGIT iterations of generate()
    temperature: float = 1.0            # sampling temperature of the hidden tokens
    choice_temperature: float = 4.5     # MaskGIT's Gumbel noise on the confidences, annealed to 0


@register_model
class VQGANModel(I2IModel):
    """VQ-GAN: frozen VQ tokenizer + MaskGIT/MAGE token transformer: E = token encoder, D = token decoder + VQ decoder."""
    family = "vqgan"
    config_class = VQGANConfig

    def __init__(self, config: VQGANConfig):
        super().__init__(config)
        if config.tokenizer is None:
            if config.tokenizer_path is None:
                raise UserError("a vqgan model needs a tokenizer: set model.tokenizer_path to a "
                                "`i2i-unlearn train-tokenizer` output")
            config.tokenizer = VQTokenizer.read_config(config.tokenizer_path)["model"]
        tokenizer_config = from_dict(VQTokenizerConfig, config.tokenizer, " model.tokenizer")
        if (tokenizer_config.image_size, tokenizer_config.channels) != (config.image_size, config.channels):
            raise UserError("the tokenizer's image_size/channels differ from the model's")
        self.tokenizer = VQTokenizer(tokenizer_config)
        self.tokenizer.requires_grad_(False).eval()
        length = self.tokenizer.grid ** 2
        size = (tokenizer_config.codebook_size, length, config.width, config.heads, config.mlp_ratio)
        self.token_encoder = TokenEncoder(*size, config.encoder_layers)
        self.token_decoder = TokenDecoder(*size, config.decoder_layers)
        self._token_cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()

    def load_state_dict(self, *args, **kwargs):
        # new tokenizer weights: cached tokens are stale; a new cache, since another model may share the old one
        self._token_cache = OrderedDict()
        return super().load_state_dict(*args, **kwargs)

    def share_caches_with(self, other: I2IModel) -> None:
        """One token cache for a student and its teacher when their frozen tokenizers are the same: each retain
        image is then tokenized once per mask, not once per model (benchmarks/step_cost.py)."""
        mine, theirs = self.tokenizer.state_dict(), other.tokenizer.state_dict()
        if mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine):
            self._token_cache = other._token_cache

    def tokenize(self, x: torch.Tensor, cache: bool = True) -> torch.Tensor:
        """The frozen tokenizer's tokens, cached per image (keyed by its bytes). Without the cache an
        unlearning step tokenizes the same retain and forget images (and their degraded versions) again
        at every step, for teacher and student: about 3/4 of the step's time on the VQ encoder.
        `cache=False` for images seen once (fresh noise), which would only push the dataset's out."""
        if not cache:
            return self.tokenizer.tokenize(x)
        keys = [hashlib.blake2b(image.detach().cpu().numpy().tobytes(), digest_size=16).digest() for image in x]
        missing = [i for i, key in enumerate(keys) if key not in self._token_cache]
        if missing:
            tokens = self.tokenizer.tokenize(x[missing]).cpu()
            for i, row in zip(missing, tokens):
                self._token_cache[keys[i]] = row
            while len(self._token_cache) > TOKEN_CACHE_SIZE:
                self._token_cache.popitem(last=False)
        for key in keys:
            self._token_cache.move_to_end(key)
        return torch.stack([self._token_cache[key] for key in keys]).to(x.device)

    def init_pretrained_parts(self) -> None:
        if self.config.tokenizer_path is None:
            return
        pretrained = VQTokenizer.from_pretrained(self.config.tokenizer_path)
        if dataclasses.asdict(pretrained.config) != dataclasses.asdict(self.tokenizer.config):
            raise UserError(f"{self.config.tokenizer_path}: its tokenizer config differs from model.tokenizer")
        self.tokenizer.load_state_dict(pretrained.state_dict())

    # --- parts ------------------------------------------------------------------------------
    @property
    def encoder(self):
        return self.token_encoder

    @property
    def decoder(self):
        return nn.ModuleList([self.token_decoder, self.tokenizer])

    def frozen_modules(self):
        return [self.tokenizer]

    @property
    def mask_grid(self) -> int:
        return self.tokenizer.grid

    @property
    def sampling_steps(self) -> int:
        return self.config.decode_steps

    @property
    def image_shape(self):
        return (self.config.channels, self.config.image_size, self.config.image_size)

    def train(self, mode: bool = True):
        super().train(mode)
        self.tokenizer.eval()  # frozen: diffusers' blocks compute slightly different numbers in train mode
        return self

    # --- tokens -----------------------------------------------------------------------------
    def token_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """(B, L) bool, True where a token has any hidden pixel: a hole rounded outward."""
        cell = self.config.image_size // self.tokenizer.grid
        return (F.max_pool2d(mask, cell) > 0).flatten(1)

    def visible_tokens(self, x, mask, cache: bool = True) -> torch.Tensor:
        """Tokens of the degraded image: they cannot depend on hidden pixels."""
        return self.tokenize(degrade(x, mask, self.config.hole_fill), cache)

    def sample_context(self, x, mask, generator):
        """MaskGIT's training states: a cosine-scheduled share of each hole's tokens stays unknown,
        the rest are revealed (given), as after some decoding steps. Shared by teacher and student."""
        hidden = self.token_mask(mask).cpu()
        ratio = torch.cos(math.pi / 2 * torch.rand(x.shape[0], generator=generator))
        n_unknown = torch.clamp(torch.ceil(ratio * hidden.sum(1)), min=1)
        scores = torch.rand(hidden.shape, generator=generator).masked_fill(~hidden, 2.0)
        rank = scores.argsort(dim=1).argsort(dim=1)
        return {"unknown": ((rank < n_unknown.unsqueeze(1)) & hidden).to(x.device)}

    def _unknown(self, mask, ctx):
        hidden = self.token_mask(mask)
        return ctx["unknown"] & hidden if ctx else hidden

    def _inputs(self, x, mask, ctx, answer=None, cache=True):
        """(input tokens, unknown positions, target tokens): revealed hole tokens are the answer's."""
        hidden = self.token_mask(mask)
        unknown = self._unknown(mask, ctx)
        answer = self.tokenize(x, cache) if answer is None else answer
        tokens = torch.where(hidden, answer, self.visible_tokens(x, mask, cache))
        return tokens, unknown, answer

    # --- the protocol -----------------------------------------------------------------------
    def encode(self, x, mask, ctx=None):
        tokens, unknown, _ = self._inputs(x, mask, ctx)
        return self.token_encoder(tokens, unknown)

    def encode_fresh(self, x, mask, ctx=None):
        tokens, unknown, _ = self._inputs(x, mask, ctx, cache=False)
        return self.token_encoder(tokens, unknown)

    def predict(self, x, mask, ctx=None, target=None):
        """Token logits (B, L, codebook_size)."""
        tokens, unknown, _ = self._inputs(x, mask, ctx, target)
        return self.token_decoder(self.token_encoder(tokens, unknown), unknown)

    def decode(self, features, x, mask, ctx=None):
        return self.token_decoder(features, self._unknown(mask, ctx))

    def training_loss(self, x, mask, ctx=None, target=None):
        """Cross-entropy on the unknown tokens; `target` (token indices) replaces x's tokens."""
        tokens, unknown, answer = self._inputs(x, mask, ctx, target)
        logits = self.token_decoder(self.token_encoder(tokens, unknown), unknown)
        shard = (ctx or {}).get("shard", WHOLE)
        if shard.count == 1:
            return F.cross_entropy(logits[unknown], answer[unknown])
        # the mean over the global batch's unknown tokens (images have different counts): this process's
        # sum over the global count, times the process count that DDP's gradient average divides by
        total = F.cross_entropy(logits[unknown], answer[unknown], reduction="sum")
        return total * shard.count / shard.sum(unknown.sum()).clamp(min=1)

    def noise_target(self, images, noise_image, generator):
        """noisy-label's target: random tokens drawn from the token frequencies of the real images."""
        counts = torch.bincount(self.tokenize(images).flatten(),
                                minlength=self.tokenizer.config.codebook_size).float()
        draws = torch.multinomial(counts.cpu(), images.shape[0] * self.tokenizer.grid ** 2, replacement=True,
                                  generator=generator)
        return draws.view(images.shape[0], -1).to(images.device)

    @torch.no_grad()
    def generate_tokens(self, x, mask, generator=None):
        """MaskGIT decoding: each step samples every unknown token, keeps the most confident and
        re-masks the rest on a cosine schedule; the last step leaves none unknown.
        Returns (initial tokens, unknown-at-start, final tokens)."""
        tokens, unknown = self.visible_tokens(x, mask), self.token_mask(mask)
        start, start_unknown = tokens.clone(), unknown.clone()
        n_hidden = unknown.sum(1, keepdim=True)
        steps = self.config.decode_steps
        for step in range(steps):
            logits = self.token_decoder(self.token_encoder(tokens, unknown), unknown) / max(self.config.temperature, 1e-6)
            probs = logits.softmax(-1)
            sampled = torch.multinomial(probs.view(-1, probs.shape[-1]).cpu(), 1, generator=generator)
            sampled = sampled.view(tokens.shape).to(tokens.device)
            tokens = torch.where(unknown, sampled, tokens)
            progress = (step + 1) / steps
            keep_unknown = torch.floor(n_hidden * math.cos(math.pi / 2 * progress))
            confidence = probs.gather(-1, sampled.unsqueeze(-1)).squeeze(-1).clamp_min(1e-20).log()
            gumbel = -torch.log(-torch.log(torch.rand(confidence.shape, generator=generator).clamp(1e-20, 1)))
            confidence = confidence + self.config.choice_temperature * (1 - progress) * gumbel.to(confidence)
            confidence = confidence.masked_fill(~unknown, math.inf)
            rank = confidence.argsort(dim=1).argsort(dim=1)
            unknown = rank < keep_unknown
            self.sampling_progress(progress)
        return start, start_unknown, tokens

    @torch.no_grad()
    def generate(self, x, mask, generator=None):
        _, _, tokens = self.generate_tokens(x, mask, generator)
        pixels = self.tokenizer.detokenize(tokens)
        return keep_visible(x, mask, pixels)
