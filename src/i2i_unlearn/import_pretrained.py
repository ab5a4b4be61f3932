"""Your own Hugging Face checkpoint as a model folder every command accepts (`i2i-unlearn import`).

- mae: a transformers `ViTMAEForPreTraining` folder (save_pretrained: config.json + model.safetensors).
- diffusion: a diffusers `UNet2DModel` folder (config.json + diffusion_pytorch_model.safetensors), or a
  pipeline folder holding unet/ and scheduler/. The U-Net must be the family's Palette-style inpainting
  network (models/diffusion.py): its input is [degraded image, noisy image], 2 x C channels, its output
  the predicted noise, C channels, trained on an epsilon-predicting DDPM schedule given by the
  scheduler_config.json beside it or by --scheduler.

Weights are read from safetensors only (never pickle) and the source folder is only read. Before
anything is written, the wrapped model must compute what the source network computes on a probe
input. The new folder's config.json records the source (path, sha256 of every file read) and the
data the model is meant to be used with, which unlearn and evaluate read as its training data.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import math
import sys
import time
from pathlib import Path

import torch
import yaml

from i2i_unlearn.checkpoints import read_json, sha256_file
from i2i_unlearn.config import DataConfig, TrainConfig, from_dict, load_yaml, to_dict
from i2i_unlearn.data import open_split, select_classes
from i2i_unlearn.errors import UserError
from i2i_unlearn.lineage import input_folders
from i2i_unlearn.model_card import write_model_card
from i2i_unlearn.models import I2IModel
from i2i_unlearn.models.diffusion import FAMILY_UNET_KEYS, DiffusionConfig, DiffusionModel
from i2i_unlearn.models.mae import MAEConfig, MAEModel
from i2i_unlearn.paths import relative
from i2i_unlearn.runs import prepare_output_dir, run_record, write_run_record
from i2i_unlearn.train import input_hash, validation_check

# What each family imports, as a Hugging Face config.json names it.
SOURCE_KINDS = {"mae": "a transformers ViTMAE model (model_type vit_mae)",
                "diffusion": "a diffusers UNet2DModel"}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def import_pretrained(family: str, source_dir: str | Path, out_dir: str | Path, data: dict, *,
                      classes: list[str] | None = None, scheduler: str | Path | None = None,
                      overwrite: bool = False) -> I2IModel:
    """Wrap the Hugging Face folder `source_dir` as a `family` model in `out_dir` (never in source_dir).

    `data`: DataConfig keys of the data the model is meant for ("dataset" at least; image_size and
    channels come from the model). `classes`: the classes it was trained on (None = all).
    `scheduler`: diffusion only, the scheduler_config.json (or its folder) the U-Net was trained with."""
    started = time.time()
    if family not in IMPORTERS:
        raise UserError(f"cannot import a {family!r} model; importable families: {', '.join(IMPORTERS)}")
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise UserError(f"--from-pretrained folder not found: {source_dir}")
    if scheduler is not None and family != "diffusion":
        raise UserError("--scheduler is for the diffusion family only")
    model, source_record, folders_read = IMPORTERS[family](source_dir, scheduler)
    model.eval()

    data_config = _data_config(data, model)
    split = open_split(data_config)   # an image folder's parts stay on disk: the check below reads batches
    train_images = select_classes(split.train, classes)   # refuses unknown class names
    val_images = select_classes(split.val, classes)
    out_dir = prepare_output_dir(out_dir, overwrite=overwrite, resume=False,
                                 protected=input_folders(*folders_read, data_config))
    # The check `train` ends with: is the model any good on this data (hole error vs the mean fill)?
    # Its warning advises training longer; an imported model needs other advice, given below.
    with contextlib.redirect_stderr(io.StringIO()):
        validation = validation_check(model, val_images, train_images)
    if validation is not None and not validation["learned"]:
        print(f"WARNING: on {data_config.dataset} validation images the imported model's hole error is "
              f"{validation['ratio_to_mean_fill']}x the mean-image fill's: is this the data it was trained on, "
              "and does it take images scaled to [-1, 1] as the family feeds them?", file=sys.stderr, flush=True)
    recipe = TrainConfig(data=data_config, model={"family": family, **dataclasses.asdict(model.config)},
                         classes=classes)
    imported = {**source_record, "training_recipe": "unknown: `training` holds the data named at import and the "
                "tool's default recipe for this architecture (only the retrain baseline uses it)"}
    model.save_pretrained(out_dir, extra={"training": to_dict(recipe), "dataset": train_images.name,
                                          "class_names": train_images.class_names, "imported": imported})
    write_run_record(out_dir, run_record(
        "import", {"family": family, "from_pretrained": str(source_dir), "data": to_dict(data_config),
                   "classes": classes, "scheduler": str(scheduler) if scheduler else None},
        {**source_record, "split": split.describe(), **input_hash(train_images, out_dir),
         "train_count": len(train_images)},
        started, validation_check=validation))
    write_model_card(out_dir)
    return model


def read_data_file(path: str | Path) -> dict:
    """The keys a data YAML sets (checked as a DataConfig): the split knobs, dataset and root."""
    config = load_yaml(DataConfig, path)   # refuses bad YAML, unknown keys and wrong types
    given = yaml.safe_load(Path(path).read_text()) or {}
    return {key: getattr(config, key) for key in given}


def _data_config(values: dict, model: I2IModel) -> DataConfig:
    """The data the model is meant for, shaped like the model's images."""
    if not values.get("dataset"):
        raise UserError("name the data the model is meant for: --dataset NAME (see `i2i-unlearn list datasets`), "
                        "with --data-root DIR for an image folder")
    channels, size, _ = model.image_shape
    for key, value in (("image_size", size), ("channels", channels)):
        if key in values and values[key] != value:
            raise UserError(f"the data config sets {key} {values[key]}, but the imported model takes {value}")
    return from_dict(DataConfig, {**values, "image_size": size, "channels": channels}, " data")


# --- reading a Hugging Face folder ---------------------------------------------------------------

def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path} not found")
    values = read_json(path)
    if not isinstance(values, dict):
        raise UserError(f"{path} is not a JSON object")
    return values


def _source_kind(config: dict) -> str:
    """What a Hugging Face config.json describes, in words."""
    if "_class_name" in config:
        return f"a diffusers {config['_class_name']}"
    if "model_type" in config:
        return f"a transformers {config['model_type']} model"
    return "no Hugging Face model"


def _check_kind(directory: Path, config: dict, family: str, fits: bool) -> None:
    """Refuse a folder of another family, naming what it holds and the family that would fit."""
    if fits:
        return
    other = {"vit_mae": "mae", "UNet2DModel": "diffusion"}.get(config.get("model_type") or config.get("_class_name"))
    hint = f" (try --family {other})" if other and other != family else ""
    raise UserError(f"{directory} holds {_source_kind(config)}, not {SOURCE_KINDS[family]}{hint}")


def _safetensors_files(directory: Path, weights_name: str) -> list[Path]:
    """The safetensors files of a save_pretrained folder: one file, or the shards its index names."""
    if (directory / weights_name).is_file():
        return [directory / weights_name]
    index = directory / f"{weights_name}.index.json"
    if index.is_file():
        shards = sorted(set(_read_json(index).get("weight_map", {}).values()))
        missing = [name for name in shards if not (directory / name).is_file()]
        if not shards or missing:
            raise UserError(f"{index} names missing weight shard(s): {', '.join(missing) or 'none listed'}")
        return [directory / name for name in shards]
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise UserError(f"{directory} holds only pickle weights ({', '.join(pickles)}): i2i-unlearn reads "
                        f"safetensors only; re-save the model with save_pretrained (safetensors) where you trust it")
    raise UserError(f"no {weights_name} in {directory}")


def _check_loading_info(info: dict, directory: Path, what: str) -> None:
    """from_pretrained fills missing weights at random: refuse a folder that does not hold them all."""
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        names = sorted(str(name) for name in info.get(key) or [])
        if names:
            raise UserError(f"{directory} does not hold a whole {what}: {len(names)} {key.replace('_', ' ')}, "
                            f"e.g. {names[0]}")


def _square(value, key: str, directory: Path) -> int:
    """A size given as an int or a [height, width] pair; the families take square images only."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise UserError(f"{directory}: {key} {list(value)} is not square; the families take square images")
        value = value[0]
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise UserError(f"{directory}: {key} must be a positive whole number, got {value!r}")
    return value


def _hashes(files: list[Path], root: Path) -> dict[str, str]:
    return {relative(path, root): sha256_file(path) for path in files}


def _check_same_outputs(expected: torch.Tensor, actual: torch.Tensor, family: str, directory: Path) -> None:
    """The wrapped model must compute what the source network computes (same weights, same settings)."""
    difference = float((expected - actual).abs().max())
    if not torch.allclose(expected, actual, rtol=1e-4, atol=1e-5):
        raise UserError(f"the {family} family does not reproduce the outputs of {directory} (largest difference "
                        f"{difference:.3g}): its config.json has a setting the family does not build")


def _from_pretrained(model_class, directory: Path, what: str, **dtype):
    """`model_class.from_pretrained` from local safetensors only, with every weight accounted for.
    (transformers names the dtype argument `dtype`, diffusers `torch_dtype`.)"""
    try:
        source, info = model_class.from_pretrained(directory, use_safetensors=True, local_files_only=True,
                                                   output_loading_info=True, **dtype)
    except (OSError, ValueError, RuntimeError) as exc:
        raise _load_error(directory, exc) from None
    _check_loading_info(info, directory, what)
    return source


def _load_error(directory: Path, exc: Exception) -> UserError:
    return UserError(f"cannot load {directory}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")


# --- mae: transformers ViTMAEForPreTraining -------------------------------------------------------

# ViTMAEConfig settings MAEModel builds with fixed values: a checkpoint must have the same.
MAE_FIXED = {"hidden_act": "gelu", "layer_norm_eps": 1e-12, "qkv_bias": True}


def _import_mae(directory: Path, scheduler=None) -> tuple[I2IModel, dict, list[Path]]:
    from transformers import ViTMAEForPreTraining

    hf_config = _read_json(directory / "config.json")
    _check_kind(directory, hf_config, "mae", hf_config.get("model_type") == "vit_mae")
    weight_files = _safetensors_files(directory, "model.safetensors")
    files_sha256 = _hashes([directory / "config.json", *weight_files], directory)
    source = _from_pretrained(ViTMAEForPreTraining, directory, "ViTMAEForPreTraining (encoder and decoder)",
                              dtype=torch.float32)
    hf = source.config
    if hf.norm_pix_loss:
        raise UserError(f"{directory} was trained with norm_pix_loss: its decoder predicts per-patch normalised "
                        "pixels, which the mae family cannot turn back into an image")
    for key, value in MAE_FIXED.items():
        if getattr(hf, key) != value:
            raise UserError(f"{directory}: {key} is {getattr(hf, key)!r}, but the mae family builds ViTMAE "
                            f"with {key} {value!r}")
    config = MAEConfig(
        image_size=_square(hf.image_size, "image_size", directory), channels=hf.num_channels,
        patch_size=_square(hf.patch_size, "patch_size", directory), hidden_size=hf.hidden_size,
        num_layers=hf.num_hidden_layers, num_heads=hf.num_attention_heads, intermediate_size=hf.intermediate_size,
        decoder_hidden_size=hf.decoder_hidden_size, decoder_num_layers=hf.decoder_num_hidden_layers,
        decoder_num_heads=hf.decoder_num_attention_heads, decoder_intermediate_size=hf.decoder_intermediate_size)
    model = MAEModel(config)
    # Every weight comes over, the position embeddings too: MAEModel fills fixed sin-cos ones when it
    # is built, and the checkpoint's own values replace them here (a model trained with others needs its own).
    model.net.load_state_dict(source.state_dict(), strict=True)
    model.eval()

    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand((2, *model.image_shape), generator=generator) * 2 - 1
    noise = torch.rand((2, model.num_patches), generator=generator)
    model.net.config.mask_ratio = source.config.mask_ratio
    with torch.no_grad():
        _check_same_outputs(source(pixel_values=pixels, noise=noise).logits,
                            model.net(pixel_values=pixels, noise=noise).logits, "mae", directory)
    record = {"family": "mae", "source": str(directory.resolve()), "source_class": "ViTMAEForPreTraining",
              "files_sha256": files_sha256}
    return model, record, [directory]


# --- diffusion: diffusers UNet2DModel (Palette-style inpainting) ---------------------------------

def _import_diffusion(directory: Path, scheduler: str | Path | None) -> tuple[I2IModel, dict, list[Path]]:
    from diffusers import DDPMScheduler, UNet2DModel

    unet_dir = directory
    if (directory / "model_index.json").is_file() and (directory / "unet").is_dir():   # a pipeline folder
        unet_dir = directory / "unet"
    hf_config = _read_json(unet_dir / "config.json")
    _check_kind(directory, hf_config, "diffusion", hf_config.get("_class_name") == "UNet2DModel")
    weight_files = _safetensors_files(unet_dir, "diffusion_pytorch_model.safetensors")
    files_sha256 = _hashes([unet_dir / "config.json", *weight_files], directory)

    scheduler_file = _scheduler_file(unet_dir, scheduler)
    scheduler_values = _read_json(scheduler_file)
    try:
        source_scheduler = DDPMScheduler.from_config(scheduler_values)
    except (NotImplementedError, ValueError, TypeError) as exc:
        raise UserError(f"{scheduler_file}: not a DDPM schedule the diffusion family can use: {exc}") from None
    if source_scheduler.config.prediction_type != "epsilon":
        raise UserError(f"{scheduler_file}: prediction_type {source_scheduler.config.prediction_type!r}; the "
                        "diffusion family's U-Net predicts the noise ('epsilon')")

    source = _from_pretrained(UNet2DModel, unet_dir, "UNet2DModel", torch_dtype=torch.float32)
    unet = dict(source.config)
    in_channels, out_channels = unet["in_channels"], unet["out_channels"]
    if in_channels != 2 * out_channels:
        raise UserError(f"{unet_dir}: the U-Net takes {in_channels} input channels for {out_channels} output "
                        f"channels, but the diffusion family's takes 2 x {out_channels} = {2 * out_channels}: "
                        "the degraded image (hole filled with noise) and the noisy image")
    image_size = _square(unet["sample_size"], "sample_size", unet_dir)
    known = set(inspect.signature(UNet2DModel.__init__).parameters) - {"self", *FAMILY_UNET_KEYS}
    config = DiffusionConfig(
        image_size=image_size, channels=out_channels, block_out_channels=tuple(unet["block_out_channels"]),
        down_block_types=tuple(unet["down_block_types"]), up_block_types=tuple(unet["up_block_types"]),
        layers_per_block=unet["layers_per_block"], norm_num_groups=unet["norm_num_groups"],
        num_train_timesteps=source_scheduler.config.num_train_timesteps,
        beta_schedule=source_scheduler.config.beta_schedule,
        mask_grid=math.gcd(image_size, 8),   # the family's 8x8 grid where it fits the image
        unet_options={key: _plain(value) for key, value in unet.items() if key in known})
    model = DiffusionModel(config)   # refuses U-Net settings the family's split forward does not compute
    # The family builds its schedule from num_train_timesteps and beta_schedule alone (beta_start and
    # beta_end at their defaults): the noise levels must be the source's.
    if not torch.allclose(model.train_scheduler.alphas_cumprod, source_scheduler.alphas_cumprod, atol=1e-6):
        raise UserError(f"{scheduler_file}: its noise levels differ from the diffusion family's "
                        "DDPMScheduler(num_train_timesteps, beta_schedule), which keeps the default beta_start "
                        "and beta_end and no rescaling")
    model.unet.load_state_dict(source.state_dict(), strict=True)
    model.eval()

    generator = torch.Generator().manual_seed(0)
    sample = torch.randn((2, in_channels, image_size, image_size), generator=generator)
    timesteps = torch.tensor([1, config.num_train_timesteps - 1])
    with torch.no_grad():
        _check_same_outputs(source(sample, timesteps).sample, model._predict_input(sample, timesteps),
                            "diffusion", unet_dir)
    files_sha256[relative(scheduler_file, directory)] = sha256_file(scheduler_file)
    record = {"family": "diffusion", "source": str(directory.resolve()), "source_class": "UNet2DModel",
              "files_sha256": files_sha256, "scheduler_config": str(scheduler_file.resolve())}
    return model, record, [directory, scheduler_file.parent]


def _scheduler_file(unet_dir: Path, scheduler: str | Path | None) -> Path:
    """--scheduler (a scheduler_config.json or its folder), else a pipeline's scheduler/ beside unet/."""
    if scheduler is not None:
        path = Path(scheduler)
        path = path / "scheduler_config.json" if path.is_dir() else path
        if not path.is_file():
            raise UserError(f"--scheduler: {path} not found")
        return path
    beside = unet_dir.parent / "scheduler" / "scheduler_config.json"
    if (unet_dir.parent / "model_index.json").is_file() and beside.is_file():
        return beside
    raise UserError(f"{unet_dir}: no scheduler config beside the U-Net; pass --scheduler with the "
                    "scheduler_config.json (or its folder) it was trained with")


def _plain(value):
    """JSON-safe values for the model config (diffusers keeps some settings as tuples)."""
    return list(value) if isinstance(value, tuple) else value


IMPORTERS = {"mae": _import_mae, "diffusion": _import_diffusion}
