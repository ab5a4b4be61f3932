import copy

import pytest
import torch

from i2i_unlearn.checkpoints import sha256_file
from i2i_unlearn.config import DataConfig, TaskConfig
from i2i_unlearn.data import load_split
from i2i_unlearn.methods import METHODS, Batch, get_method
from i2i_unlearn.models import load_model
from i2i_unlearn.tasks import make_mask, noise_image
from i2i_unlearn.unlearn import unlearn
from conftest import tiny_unlearn_config

LOSS_METHODS = [name for name in METHODS if name != "retrain"]
ENCODER_ONLY = [name for name, cls in METHODS.items() if cls.trains == "encoder"]


def _batches(model, n=6):
    train, _ = load_split(DataConfig())
    cats = train.images[train.labels == 2][:n].clone().requires_grad_(True)
    dogs = train.images[train.labels == 4][:n].clone().requires_grad_(True)
    mask = make_mask(TaskConfig("center-inpaint", 0.5), n, 32, model.mask_grid)
    g = torch.Generator().manual_seed(0)
    forget = Batch(cats, mask, model.sample_context(cats, mask, g), noise_image(cats.detach(), "batch-gaussian", g))
    retain = Batch(dogs, mask, model.sample_context(dogs, mask, g))
    return forget, retain


def _depends_on(term, images):
    grad, = torch.autograd.grad(term, images, retain_graph=True, allow_unused=True)
    return grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize("name", LOSS_METHODS)
def test_each_loss_term_acts_on_its_own_samples(name, tiny_model_dir):
    """The released baseline code applied the forget term to retain samples; ours must not."""
    teacher = load_model(tiny_model_dir).requires_grad_(False)
    student = copy.deepcopy(teacher)
    with torch.no_grad():  # move the student away from the teacher so every term has a gradient
        for p in student.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    forget, retain = _batches(student)
    terms = get_method(name, tiny_unlearn_config(method=name)).loss(
        student, teacher, forget, retain, torch.Generator().manual_seed(0))
    assert _depends_on(terms["retain"], retain.images) and not _depends_on(terms["retain"], forget.images)
    assert _depends_on(terms["forget"], forget.images) and not _depends_on(terms["forget"], retain.images)


def test_at_step_zero_the_retain_term_of_ours_is_zero_and_the_forget_term_is_not(tiny_model_dir):
    teacher = load_model(tiny_model_dir).requires_grad_(False)
    student = copy.deepcopy(teacher)
    forget, retain = _batches(student)
    terms = get_method("ours", tiny_unlearn_config()).loss(student, teacher, forget, retain, None)
    assert terms["retain"].item() == 0.0
    assert terms["forget"].item() > 1e-4


def _state(model, part):
    return {k: v.clone() for k, v in getattr(model, part).state_dict().items()}


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_runs_and_encoder_only_methods_keep_the_decoder(name, tiny_model_dir, tmp_path):
    original_hash = sha256_file(tiny_model_dir / "model.safetensors")
    original = load_model(tiny_model_dir)
    unlearn(tiny_model_dir, tiny_unlearn_config(method=name, steps=3), tmp_path / "out")
    result = load_model(tmp_path / "out")
    assert sha256_file(tiny_model_dir / "model.safetensors") == original_hash   # the original is untouched
    decoder_same = all(torch.equal(v, result.decoder.state_dict()[k]) for k, v in _state(original, "decoder").items())
    encoder_same = all(torch.equal(v, result.encoder.state_dict()[k]) for k, v in _state(original, "encoder").items())
    assert not encoder_same or name == "retrain" and not decoder_same
    if name in ENCODER_ONLY:
        assert decoder_same
    assert (tmp_path / "out" / "run.json").is_file()


def test_retain_batches_can_be_larger_than_forget_batches(tiny_model_dir):
    from i2i_unlearn.data import make_unlearn_split
    from i2i_unlearn.unlearn import unlearning_batches
    config = tiny_unlearn_config(batch_size=4, retain_batch_size=12)
    model = load_model(tiny_model_dir)
    batch = unlearning_batches(make_unlearn_split(DataConfig(), config), config, model)(0, torch.Generator())
    assert batch["forget_images"].shape[0] == 4 and batch["retain_images"].shape[0] == 12
    assert batch["forget_noise"].shape == batch["forget_images"].shape
