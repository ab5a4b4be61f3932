"""`i2i-unlearn import`: your own Hugging Face checkpoint, made here with save_pretrained (tiny, random)."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from builders import make_mae, make_unet
from PIL import Image
from typer.testing import CliRunner

from i2i_unlearn.checkpoints import sha256_file
from i2i_unlearn.cli import app
from i2i_unlearn.errors import UserError
from i2i_unlearn.lineage import training_data_config
from i2i_unlearn.models import load_model

runner = CliRunner()


def _run(args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result


def _error(args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert isinstance(result.exception, UserError), f"{result.output}\n{result.exception!r}"
    return str(result.exception)


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file of a folder with its hash: the source folder must end exactly as it began."""
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list:
    """A tiny image folder (3 classes x 8 grey 32px images) and a data YAML with a small split."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for name in ("Cat", "Dog", "Owl"):
        (root / "photos" / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(root / "photos" / name / f"{i}.png")
    (root / "data.yaml").write_text("test_per_class: 1\nval_per_class: 1\n")
    return ["--dataset", "image-folder", "--data-root", root / "photos", "--data-config", root / "data.yaml"]


def test_an_imported_mae_computes_what_the_source_computes_and_unlearns(tmp_path, photos):
    source_dir, model_dir = tmp_path / "hf-mae", tmp_path / "my-mae"
    source = make_mae(source_dir)
    before = _snapshot(source_dir)
    _run(["import", "--family", "mae", "--from-pretrained", source_dir, "--out", model_dir, *photos])
    assert _snapshot(source_dir) == before

    model = load_model(model_dir)
    assert model.family == "mae" and model.config.patch_size == 8 and model.config.hidden_size == 32
    assert torch.equal(model.net.vit.embeddings.position_embeddings, source.vit.embeddings.position_embeddings)
    assert torch.equal(model.net.decoder.decoder_pos_embed, source.decoder.decoder_pos_embed)
    # the family's own path (images in [0, 1], a task mask) gives the source network's output
    x = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(3, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1
    noise = model._patch_noise(mask)
    source.config.mask_ratio = model.net.config.mask_ratio
    with torch.no_grad():
        assert torch.allclose(model.predict(x, mask), source(pixel_values=x * 2 - 1, noise=noise).logits, atol=1e-6)

    info = json.loads((model_dir / "config.json").read_text())
    assert info["imported"]["source"] == str(source_dir.resolve())
    assert info["imported"]["files_sha256"]["model.safetensors"] == sha256_file(source_dir / "model.safetensors")
    assert info["class_names"] == ["Cat", "Dog", "Owl"]
    data = training_data_config(model)
    assert (data.dataset, data.image_size, data.channels, data.test_per_class) == ("image-folder", 32, 1, 1)
    assert json.loads((model_dir / "run.json").read_text())["kind"] == "import"

    out = tmp_path / "no-cat"
    model_files = _snapshot(model_dir)
    _run(["unlearn", "--model", model_dir, "--forget-classes", "Cat", "--steps", 2, "--alpha", 0.25, "--batch-size", 4, "--out", out])
    unlearned = load_model(out)
    assert _snapshot(model_dir) == model_files
    assert unlearned.pretrained_info["unlearning"]["parent_weights_sha256"] == info["weights_sha256"]
    # `ours` tunes the encoder only: the decoder (and its imported position embeddings) stays bit-identical
    assert all(torch.equal(a, b) for a, b in zip(unlearned.decoder.state_dict().values(),
                                                 model.decoder.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(unlearned.encoder.state_dict().values(),
                                                     model.encoder.state_dict().values()))


def test_an_imported_diffusion_unet_computes_what_the_source_computes_and_unlearns(tmp_path, photos):
    pipeline = tmp_path / "hf-pipeline"   # the layout of a diffusers pipeline: unet/ and scheduler/
    source = make_unet(pipeline / "unet", pipeline / "scheduler")
    (pipeline / "model_index.json").write_text('{"_class_name": "DDPMPipeline"}')
    before = _snapshot(pipeline)
    model_dir = tmp_path / "my-unet"
    _run(["import", "--family", "diffusion", "--from-pretrained", pipeline, "--out", model_dir, *photos])
    assert _snapshot(pipeline) == before

    model = load_model(model_dir)
    assert model.config.beta_schedule == "linear" and model.config.unet_options["attention_head_dim"] == 4
    x = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(3, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1
    ctx = model.sample_context(x, mask, torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = source(model.unet_input(x, mask, ctx), ctx["timesteps"]).sample
        assert torch.allclose(model.predict(x, mask, ctx), expected, atol=1e-6)
    files = json.loads((model_dir / "config.json").read_text())["imported"]["files_sha256"]
    assert files["unet/diffusion_pytorch_model.safetensors"] == sha256_file(
        pipeline / "unet" / "diffusion_pytorch_model.safetensors")
    assert "scheduler/scheduler_config.json" in files

    # the U-Net folder alone needs --scheduler; the same weights import the same way
    alone = tmp_path / "hf-unet"
    make_unet(alone, tmp_path / "scheduler")
    _run(["import", "--family", "diffusion", "--from-pretrained", alone, "--scheduler", tmp_path / "scheduler",
          "--out", tmp_path / "my-unet-2", *photos])
    assert load_model(tmp_path / "my-unet-2").pretrained_info["weights_sha256"] == model.pretrained_info["weights_sha256"]

    out = tmp_path / "no-cat"
    _run(["unlearn", "--model", model_dir, "--forget-classes", "Cat", "--steps", 2, "--alpha", 0.25, "--batch-size", 2, "--out", out])
    assert load_model(out).pretrained_info["unlearning"]["forget_classes"] == ["Cat"]


def _make_source(kind: str, tmp_path: Path) -> Path:
    """A Hugging Face folder of a kind a user may bring by mistake."""
    folder = tmp_path / f"hf-{kind}"
    if kind in ("mae", "bin-only"):
        make_mae(folder)
    if kind == "bin-only":   # the weights under a pickle name only (their contents are never read)
        (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    if kind == "norm-pix":
        make_mae(folder, norm_pix_loss=True)
    if kind == "unet":
        make_unet(folder)
    if kind == "three-channels":   # [noisy image, masked image, mask]: a common conditioning, not the family's
        make_unet(folder, in_channels=3)
    if kind == "fourier":
        make_unet(folder, time_embedding_type="fourier")
    return folder


@pytest.mark.parametrize("family, kind, scheduler, message", [
    ("mae", "unet", None, r"hf-unet holds a diffusers UNet2DModel, not a transformers ViTMAE model .*try --family diffusion"),
    ("diffusion", "mae", "ddpm", r"hf-mae holds a transformers vit_mae model, not a diffusers UNet2DModel \(try --family mae\)"),
    ("mae", "bin-only", None, r"holds only pickle weights \(pytorch_model.bin\): i2i-unlearn reads safetensors only"),
    ("mae", "norm-pix", None, r"trained with norm_pix_loss"),
    ("diffusion", "three-channels", "ddpm", r"the U-Net takes 3 input channels for 1 output channels, but the "
                                            r"diffusion family's takes 2 x 1 = 2"),
    ("diffusion", "fourier", "ddpm", r"the diffusion family cannot run a U-Net with time_embedding_type 'fourier'"),
    ("diffusion", "unet", None, r"no scheduler config beside the U-Net; pass --scheduler"),
    ("diffusion", "unet", "v-prediction", r"prediction_type 'v_prediction'; the diffusion family's U-Net predicts the noise"),
    ("diffusion", "unet", "other-betas", r"its noise levels differ from the diffusion family's"),
    ("mae", "mae", "no-data", r"name the data the model is meant for: --dataset NAME"),
    ("vqgan", "mae", None, r"cannot import a 'vqgan' model; importable families: mae, diffusion"),
])
def test_a_checkpoint_that_does_not_fit_is_refused_and_nothing_is_written(tmp_path, photos, family, kind, scheduler,
                                                                          message):
    from diffusers import DDPMScheduler
    source_dir = _make_source(kind, tmp_path)
    schedulers = {"ddpm": {}, "v-prediction": {"prediction_type": "v_prediction"}, "other-betas": {"beta_end": 0.012}}
    extra = [] if scheduler == "no-data" else list(photos)
    if scheduler in schedulers:
        DDPMScheduler(beta_schedule="linear", **schedulers[scheduler]).save_pretrained(tmp_path / "scheduler")
        extra += ["--scheduler", tmp_path / "scheduler"]
    before = _snapshot(tmp_path)
    out = tmp_path / "out"
    error = _error(["import", "--family", family, "--from-pretrained", source_dir, "--out", out, *extra])
    assert re.search(message, error), error
    assert "\n" not in error
    assert not out.exists()
    assert _snapshot(tmp_path) == before


def test_the_output_may_not_be_or_lie_inside_the_source(tmp_path, photos):
    source_dir = tmp_path / "hf-mae"
    make_mae(source_dir)
    before = _snapshot(source_dir)
    base = ["import", "--family", "mae", "--from-pretrained", source_dir, *photos, "--overwrite"]
    assert "it is the input" in _error([*base, "--out", source_dir])
    assert "lies inside the input" in _error([*base, "--out", source_dir / "wrapped"])
    assert "contains the input" in _error([*base, "--out", tmp_path])
    assert _snapshot(source_dir) == before


def test_a_data_config_that_contradicts_the_model_is_refused(tmp_path, photos):
    source_dir = tmp_path / "hf-mae"
    make_mae(source_dir)
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text("dataset: animal-mnist\nimage_size: 28\n")
    assert "sets image_size 28, but the imported model takes 32" in _error(
        ["import", "--family", "mae", "--from-pretrained", source_dir, "--out", tmp_path / "out",
         "--data-config", data_yaml])
    assert "unknown class name(s) Unicorn" in _error(
        ["import", "--family", "mae", "--from-pretrained", source_dir, "--out", tmp_path / "out", *photos,
         "--classes", "Cat,Unicorn"])
    assert not (tmp_path / "out").exists()
