"""Evaluators other than the domain classifier: any image backbone a user has as a local
`transformers` directory (e.g. a CLIP vision model). Nothing is downloaded.

They give embeddings (FID, KID, similarity, T-SNE) but no classes, so IS and the recognition
rate are not computed with them. Spec strings: "clip:/dir", "hf:/dir", or a classifier dir.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from i2i_unlearn.checkpoints import sha256_file
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.evaluator import load_evaluator

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


class TransformersEmbedder:
    kind = "embedder"
    has_classes = False

    def __init__(self, directory: str | Path, clip: bool):
        from transformers import AutoModel, CLIPVisionModelWithProjection
        directory = Path(directory)
        if not directory.is_dir():
            raise UserError(f"embedder directory not found: {directory}")
        try:
            loader = CLIPVisionModelWithProjection if clip else AutoModel
            self.model = loader.from_pretrained(directory, local_files_only=True).eval()
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load a transformers model from {directory}: {str(exc).splitlines()[0]}") from None
        self.clip = clip
        vision = getattr(self.model.config, "vision_config", self.model.config)
        self.image_size = vision.image_size
        processor = directory / "preprocessor_config.json"
        settings = json.loads(processor.read_text()) if processor.is_file() else {}
        self.mean = torch.tensor(settings.get("image_mean", CLIP_MEAN)).view(1, 3, 1, 1)
        self.std = torch.tensor(settings.get("image_std", CLIP_STD)).view(1, 3, 1, 1)
        weights = sorted(directory.glob("*.safetensors"))
        self.sha256 = sha256_file(weights[0]) if weights else "unknown"
        self.name = f"{'clip' if clip else 'hf'}:{directory.name}"
        self.class_names = None

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        out = []
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size]
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic", align_corners=False)
            x = (x.clamp(0, 1) - self.mean) / self.std
            result = self.model(pixel_values=x)
            if self.clip:
                out.append(result.image_embeds)
            elif getattr(result, "pooler_output", None) is not None:
                out.append(result.pooler_output.flatten(1))
            else:
                out.append(result.last_hidden_state.mean(dim=1))
        return torch.cat(out)

    def embeddings(self, images):
        return F.normalize(self.features(images), dim=1)

    def feature_module(self) -> nn.Module:
        return _Features(self)

    def describe(self) -> dict:
        return {"name": self.name, "kind": "embedder", "sha256": self.sha256, "test_accuracy": None,
                "class_names": None}


class _Features(nn.Module):
    def __init__(self, embedder: TransformersEmbedder):
        super().__init__()
        self.embedder = embedder
        self.num_features = int(embedder.features(torch.zeros(1, 3, 8, 8)).shape[1])

    def forward(self, images):
        return self.embedder.features(images)


def load_embedder(spec: str):
    """A classifier evaluator directory, or "clip:/dir" / "hf:/dir" for a transformers backbone."""
    for prefix, clip in (("clip:", True), ("hf:", False)):
        if spec.startswith(prefix):
            return TransformersEmbedder(spec[len(prefix):], clip=clip)
    return load_evaluator(spec)
