import json

import pytest
import torch

from i2i_unlearn.config import TaskConfig
from i2i_unlearn.errors import UserError
from i2i_unlearn.models import MODELS, build_model, load_model
from i2i_unlearn.models.mae import MAEModel
from i2i_unlearn.tasks import make_mask
from conftest import TINY_MAE, TINY_MODELS


def _batch(n=4, task=TaskConfig("center-inpaint", 0.5), grid=4):
    x = torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    return x, make_mask(task, n, 32, grid, torch.Generator().manual_seed(0))


def test_sincos_position_embeddings_are_filled():
    model = build_model(TINY_MAE)
    assert model.net.vit.embeddings.position_embeddings[0, 1:].abs().sum() > 0
    assert model.net.decoder.decoder_pos_embed[0, 1:].abs().sum() > 0
    assert not model.net.vit.embeddings.position_embeddings.requires_grad


@pytest.mark.parametrize("family", sorted(MODELS))
@pytest.mark.parametrize("task", [TaskConfig("center-inpaint", 0.5), TaskConfig("outpaint", 0.5),
                                  TaskConfig("random-patches", 0.75)])
def test_generate_keeps_visible_pixels_exactly_and_is_seeded(family, task):
    model = build_model(TINY_MODELS[family]).eval()
    x, mask = _batch(task=task, grid=model.mask_grid)
    out = model.generate(x, mask, torch.Generator().manual_seed(3))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out[mask == 0], x[mask == 0])
    assert not torch.equal(out[mask == 1], x[mask == 1])
    assert torch.equal(out, model.generate(x, mask, torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("family", sorted(MODELS))
def test_every_family_round_trips_through_save_and_load(family, tmp_path):
    model = build_model(TINY_MODELS[family]).eval()
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    x, mask = _batch(grid=model.mask_grid)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert torch.equal(model.generate(x, mask, torch.Generator().manual_seed(0)),
                       loaded.generate(x, mask, torch.Generator().manual_seed(0)))
    assert sum(p.numel() for p in model.encoder.parameters()) > 0
    assert sum(p.numel() for p in model.decoder.parameters()) > 0


def test_encoding_does_not_see_hidden_pixels():
    model = build_model(TINY_MAE).eval()
    x, mask = _batch()
    changed = x * (1 - mask) + mask * torch.rand_like(x)
    with torch.no_grad():
        assert torch.equal(model.encode(x, mask, {}), model.encode(changed, mask, {}))
        assert not torch.equal(model.encode(x, mask, {}), model.encode(torch.rand_like(x), mask, {}))


def test_training_loss_counts_only_hidden_patches():
    model = build_model(TINY_MAE)
    x, mask = _batch()
    target = x.clone()
    target[mask == 0] = 1.0  # changing the visible part of the target changes nothing
    assert torch.equal(model.training_loss(x, mask, {}), model.training_loss(x, mask, {}, target=target))


def test_from_pretrained_of_a_family_class(tmp_path):
    model = build_model(TINY_MAE).eval()
    model.save_pretrained(tmp_path / "m")
    assert MAEModel.from_pretrained(tmp_path / "m").config == model.config


def test_altered_missing_and_foreign_weights_are_refused(tmp_path):
    build_model(TINY_MAE).save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-4] + b"\x00\x00\x00\x01")
    with pytest.raises(UserError, match="does not match the hash"):
        load_model(tmp_path / "m")
    weights.unlink()
    with pytest.raises(UserError, match="weight file missing"):
        load_model(tmp_path / "m")
    weights.write_bytes(original)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "family": "gan-someday"}))
    with pytest.raises(UserError, match="unknown model family"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="holds a mae model, not a diffusion model"):
        load_model(tmp_path / "m", family="diffusion")
    with pytest.raises(UserError, match="not a model directory"):
        load_model(tmp_path)


def test_weights_of_another_config_are_refused(tmp_path):
    build_model(TINY_MAE).save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["model"]["hidden_size"] = 64
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="does not fit a mae model"):
        load_model(tmp_path / "m")


def test_mask_off_the_patch_grid_is_refused():
    x, mask = _batch(grid=8)  # the tiny MAE has 8-pixel patches: a 4-pixel mask grid does not fit
    with pytest.raises(UserError, match="patch grid"):
        build_model(TINY_MAE).generate(x, make_mask(TaskConfig("random-patches", 0.5), 4, 32, 8))
