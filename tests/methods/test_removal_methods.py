"""The methods meant to remove rather than hide (issue 33): ours-decoder and undo."""
import copy

import pytest
import torch

from i2i_unlearn.methods import get_method
from i2i_unlearn.methods.base import feature_distance, set_trainable
from i2i_unlearn.methods.ours_substitute import nearest_visible
from i2i_unlearn.methods.undo import shrink_and_perturb
from i2i_unlearn.models import load_model
from conftest import tiny_unlearn_config
from test_methods import _batches, _moved_student


@pytest.mark.parametrize("family", ["mae", "vqgan"])
def test_ours_decoder_terms_match_hand_computed_values_and_each_reaches_its_own_part(family, tiny_model_dirs):
    teacher = load_model(tiny_model_dirs[family])
    student = _moved_student(teacher)
    teacher.requires_grad_(False)
    set_trainable(student, "whole")
    forget, retain = _batches(student)
    terms = get_method("ours-decoder", tiny_unlearn_config(method="ours-decoder")).loss(
        student, teacher, forget, retain, torch.Generator().manual_seed(0))
    substitutes = retain.images[nearest_visible(forget.images, forget.mask, retain.images)]
    with torch.no_grad():
        encoder_term = feature_distance(student.encode(forget.images, forget.mask, forget.ctx),
                                        teacher.encode(substitutes, forget.mask, forget.ctx))
        rendered = student.decode(teacher.encode(forget.images, forget.mask, forget.ctx), forget.images, forget.mask,
                                  forget.ctx)
        decoder_term = torch.mean((rendered - teacher.predict(substitutes, forget.mask, forget.ctx)) ** 2)
    assert terms["forget"].item() == pytest.approx((encoder_term + decoder_term).item(), rel=1e-5)
    assert decoder_term > 0 and encoder_term > 0
    # retain: the encoder kept at the original's encodings, the decoder at the original's renderings of them
    with torch.no_grad():
        kept_encoding = teacher.encode(retain.images, retain.mask, retain.ctx)
        retain_encoder_term = feature_distance(student.encode(retain.images, retain.mask, retain.ctx), kept_encoding)
        retain_decoder_term = torch.mean((student.decode(kept_encoding, retain.images, retain.mask, retain.ctx)
                                          - teacher.predict(retain.images, retain.mask, retain.ctx)) ** 2)
    assert terms["retain"].item() == pytest.approx((retain_encoder_term + retain_decoder_term).item(), rel=1e-5)
    assert retain_decoder_term > 0 and retain_encoder_term > 0
    # the decoder's terms read the original's encodings: they move the decoder alone, the feature terms the encoder
    student.zero_grad()
    decoder_only = student.decode(teacher.encode(forget.images, forget.mask, forget.ctx), forget.images, forget.mask,
                                  forget.ctx).square().mean()
    decoder_only.backward()
    assert all(p.grad is None or not p.grad.any() for p in student.encoder.parameters())
    assert any(p.grad is not None and p.grad.any() for p in student.decoder.parameters())


def test_the_decode_protocol_composes_to_predict(tiny_model_dirs):
    for family, directory in tiny_model_dirs.items():
        model = load_model(directory).eval()
        forget, _ = _batches(model)
        features = model.encode(forget.images, forget.mask, forget.ctx)
        assert torch.allclose(model.decode(features, forget.images, forget.mask, forget.ctx),
                              model.predict(forget.images, forget.mask, forget.ctx), atol=1e-5), family


def _parameters(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("family", ["mae", "vqgan", "diffusion"])
def test_shrink_and_perturb_is_seeded_bit_reproducible_and_keeps_frozen_parts(family, tiny_model_dirs):
    original = load_model(tiny_model_dirs[family])
    set_trainable(original, "whole")
    before = _parameters(original)
    runs = []
    for seed in (0, 0, 1):
        model = copy.deepcopy(original)
        shrink_and_perturb(model, 0.3, seed)
        runs.append(_parameters(model))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in before)              # same seed: bit-identical
    moved = [k for k in before if not torch.equal(runs[0][k], before[k])]
    assert moved and any(not torch.equal(runs[0][k], runs[2][k]) for k in moved)  # another seed: other weights
    frozen = [n for n, p in original.named_parameters() if not p.requires_grad]
    assert all(torch.equal(runs[0][k], before[k]) for k in frozen)               # e.g. the VQ tokenizer
    # the mix is exact: 0.7 x the weights + 0.3 x a fresh layer (recovered from a fraction-1 run)
    fresh = copy.deepcopy(original)
    shrink_and_perturb(fresh, 1.0, 0)
    fresh = _parameters(fresh)
    for k in moved:
        assert torch.allclose(runs[0][k], 0.7 * before[k] + 0.3 * fresh[k], atol=1e-6)
    untouched = copy.deepcopy(original)
    shrink_and_perturb(untouched, 0.0, 0)
    assert all(torch.equal(v, before[k]) for k, v in _parameters(untouched).items())


@pytest.mark.parametrize("family", ["mae", "diffusion"])
def test_undo_distills_the_unlearned_models_outputs_on_each_side(family, tiny_model_dirs):
    teacher = load_model(tiny_model_dirs[family]).requires_grad_(False)   # stands for the unlearned model
    student = _moved_student(teacher)
    forget, retain = _batches(student)
    method = get_method("undo", tiny_unlearn_config(method="undo"))
    terms = method.loss(student, teacher, forget, retain, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for side, batch in (("forget", forget), ("retain", retain)):
            expected = torch.mean((student.predict(batch.images, batch.mask, batch.ctx)
                                   - teacher.predict(batch.images, batch.mask, batch.ctx)) ** 2)
            assert terms[side].item() == pytest.approx(expected.item(), rel=1e-5)
    same = method.loss(copy.deepcopy(teacher), teacher, forget, retain, None)
    assert same["retain"].item() == 0.0 and same["forget"].item() == 0.0   # nothing to distill from itself


def test_undo_refuses_a_perturbation_outside_zero_to_one():
    from i2i_unlearn.errors import UserError
    with pytest.raises(UserError, match="perturb must be between 0 and 1"):
        get_method("undo", tiny_unlearn_config(method="undo", perturb=1.5))
