"""Builders the tests share (not tests themselves): a hand-made results dict and its file, and tiny Hugging Face
checkpoints saved with save_pretrained, a folder of RGB 'photos'. Importable from every test folder (pytest puts tests/ on the path)."""
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CLASSES = ["Bear", "Bird", "Cat", "Cow", "Dog", "Elephant", "Giraffe", "Horse", "Sheep", "Zebra"]

MODELS = ["original", "unlearned"]

REFERENCE = "mean-image fill"

def _scores(fid, kid, kid_std, is_, similarity, recognition, noise_kl, hidden_mse) -> dict:
    return {"fid": fid, "kid_mean": kid, "kid_std": kid_std, "is": is_, "similarity": similarity,
            "recognition": recognition, "noise_kl": noise_kl, "hidden_mse": hidden_mse}

def make_results(folder: Path, forget_class: str = "Cat") -> dict:
    """A valid results dict as `evaluate` writes it, with tiny PNG figures written into folder."""
    classes = [forget_class if c == "Cat" else c for c in CLASSES]
    images = {"grid_forget": "grid_forget.png", "grid_retain": "grid_retain.png", "tsne": "tsne.png"}
    for i, name in enumerate(images.values()):
        Image.new("RGB", (24, 12), (40 * i, 120, 200)).save(folder / name)
    evaluator_classes = classes + ["no object"]
    return {
        "schema_version": 1, "created": "2025-01-02T03:04:05+00:00",
        "task": {"name": "center-inpaint", "ratio": 0.5}, "seed": 0, "dataset": "animal-mnist",
        "forget_classes": [forget_class],
        "sets": {"forget": {"count": 100, "classes": [forget_class], "ids_sha256": "a" * 64},
                 "retain": {"count": 900, "classes": [c for c in classes if c != forget_class],
                            "ids_sha256": "b" * 64}},
        "evaluator": {"name": "cnn-animal-mnist", "kind": "classifier", "sha256": "c" * 64, "test_accuracy": 0.9712,
                      "class_names": evaluator_classes},
        "models": {"original": {"dir": "runs/mae", "family": "mae", "weights_sha256": "d" * 64, "method": None},
                   "unlearned": {"dir": "runs/mae-forget-cat", "family": "mae", "weights_sha256": "e" * 64,
                                 "method": "ours"}},
        "metrics": {
            "original": {"forget": _scores(12.3456, 0.01234, 0.00111, 2.345, 0.9123, 0.874, 45.678, 0.01234),
                         "retain": _scores(10.5, 0.0101, 0.0009, 5.1, 0.93, 0.021, 50.2, 0.0111)},
            "unlearned": {"forget": _scores(61.2, 0.0712, 0.0031, 1.2, 0.55, 0.05, 3.21, 0.0811),
                          "retain": _scores(11.0, 0.0109, 0.001, 5.0, 0.92, 0.019, 49.9, 0.0119)},
            REFERENCE: {"forget": _scores(40.0, 0.05, 0.002, 1.5, 0.7, 0.1, None, 0.05),
                        "retain": _scores(38.0, 0.048, 0.002, 3.3, 0.72, 0.01, None, 0.049)},
        },
        "reference_rows": [REFERENCE],
        "floors": {"forget": {"fid_real_halves": 2.5}, "retain": {"fid_real_halves": 0.9}},
        "instrument_check": {"task": {"name": "center-inpaint", "ratio": 0.5}, "count": 1000, "shares": {
            fill: {c: (0.91 if c == "no object" else 0.01) for c in evaluator_classes}
            for fill in ["noise", "uniform noise", "flat grey", "mean image"]}},
        "targets": [
            {"name": "retain FID <= 1.15 x original", "value": 11.0, "op": "<=", "limit": 12.075, "met": True},
            {"name": "forget FID >= 3 x original", "value": 30.0, "op": ">=", "limit": 37.04, "met": False},
        ],
        "images": images,
        "settings": {"sample_counts": {"forget": 100, "retain": 900}, "kid_subsets": 50},
        "versions": {"python": "3.11.9", "torch": "2.5.1"},
    }

def write_results(folder: Path, results: dict) -> Path:
    path = folder / "results.json"
    path.write_text(json.dumps(results))
    return path


def make_mae(directory: Path, **overrides):
    from transformers import ViTMAEConfig, ViTMAEForPreTraining
    torch.manual_seed(0)
    values = dict(image_size=32, patch_size=8, num_channels=1, hidden_size=32, num_hidden_layers=1,
                  num_attention_heads=2, intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=1,
                  decoder_num_attention_heads=2, decoder_intermediate_size=64)
    net = ViTMAEForPreTraining(ViTMAEConfig(**{**values, **overrides})).eval()
    # Position embeddings that are neither zero nor the sin-cos ones the mae family fills in when it
    # is built: the import must keep the checkpoint's own values.
    with torch.no_grad():
        net.vit.embeddings.position_embeddings.normal_()
        net.decoder.decoder_pos_embed.normal_()
    net.save_pretrained(directory)
    return net

def make_unet(directory: Path, scheduler_dir: Path | None = None, **overrides):
    """A tiny Palette-style U-Net ([degraded, noisy] in, noise out) and, if asked, its linear DDPM schedule."""
    from diffusers import DDPMScheduler, UNet2DModel
    torch.manual_seed(0)
    values = dict(sample_size=32, in_channels=2, out_channels=1, block_out_channels=(8, 16),
                  down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                  layers_per_block=1, norm_num_groups=4, attention_head_dim=4, act_fn="silu")
    net = UNet2DModel(**{**values, **overrides}).eval()
    net.save_pretrained(directory)
    if scheduler_dir is not None:
        DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear").save_pretrained(scheduler_dir)
    return net


PHOTO_COLOURS = {"cat": (200, 60, 40), "dog": (60, 180, 60), "owl": (50, 70, 200)}


def write_photos(root: Path, per_class: int = 14, size: int = 32) -> Path:
    """RGB 'photos': a coloured square per class on noise, at random places."""
    rng = np.random.default_rng(0)
    for name, colour in PHOTO_COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
            top, left = rng.integers(0, size // 2, 2)
            pixels[top:top + size // 2, left:left + size // 2] = colour
            Image.fromarray(pixels).save(root / name / f"{i:03d}.jpg")
    return root
