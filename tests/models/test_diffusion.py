"""The Palette-style diffusion family: encoder path, shared randomness, the forget teacher input,
sampling."""
import torch

from i2i_unlearn.config import TaskConfig
from i2i_unlearn.methods import get_method
from i2i_unlearn.methods.base import Batch, feature_distance
from i2i_unlearn.models import build_model
from i2i_unlearn.tasks import make_mask, noise_image
from conftest import TINY_DIFFUSION, tiny_unlearn_config


def _setup(n=4):
    model = build_model(TINY_DIFFUSION).eval()
    x = torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    mask = make_mask(TaskConfig("center-inpaint", 0.5), n, 32, model.mask_grid)
    return model, x, mask


def test_encoder_path_reproduces_the_full_unet_forward():
    model, x, mask = _setup()
    ctx = model.sample_context(x, mask, torch.Generator().manual_seed(0))
    unet_input = model.unet_input(x, mask, ctx)
    with torch.no_grad():
        full = model.unet(unet_input, ctx["timesteps"]).sample
        features = model.encode(x, mask, ctx)
        assert torch.allclose(model.predict(x, mask, ctx), full, atol=1e-6)
    # every skip feature map and the middle-block output, as UNet2DModel computes them
    captured = []
    hooks = [model.unet.mid_block.register_forward_hook(lambda m, i, o: captured.append(o))]
    with torch.no_grad():
        model.unet(unet_input, ctx["timesteps"])
    hooks[0].remove()
    assert len(features) - 1 == sum(len(block.resnets) for block in model.unet.up_blocks)  # every skip the up path uses
    assert torch.allclose(features[-1], captured[0], atol=1e-6)


def test_teacher_and_student_share_timestep_and_noise():
    model, x, mask = _setup()
    student = build_model(TINY_DIFFUSION).eval()
    student.load_state_dict(model.state_dict())
    ctx = model.sample_context(x, mask, torch.Generator().manual_seed(1))
    again = model.sample_context(x, mask, torch.Generator().manual_seed(1))
    assert all(torch.equal(ctx[k], again[k]) for k in ctx)
    with torch.no_grad():  # same weights + same context = same features: nothing random inside encode
        assert all(torch.equal(a, b) for a, b in zip(model.encode(x, mask, ctx), student.encode(x, mask, ctx)))
    other = model.sample_context(x, mask, torch.Generator().manual_seed(2))
    assert not torch.equal(ctx["timesteps"], other["timesteps"]) and not torch.equal(ctx["eps"], other["eps"])


def test_forget_teacher_input_is_pure_noise_in_the_hole_and_the_image_outside():
    model, x, mask = _setup()
    ctx = model.sample_context(x, mask, torch.Generator().manual_seed(0))
    condition, noisy = model.noise_input(x, mask, ctx).chunk(2, dim=1)
    hole, known = mask.bool(), ~mask.bool()
    assert torch.equal(noisy[hole], ctx["eps"][hole])          # pure N(0, I) at every timestep
    assert torch.equal(noisy[known], (x * 2 - 1)[known])       # the forget image's own context
    assert torch.equal(condition[known], (x * 2 - 1)[known])
    # the student's input for the same image is the diffused image in the hole instead
    _, student_noisy = model.unet_input(x, mask, ctx).chunk(2, dim=1)
    assert not torch.equal(student_noisy[hole], noisy[hole])
    assert torch.equal(student_noisy[known], noisy[known])


def test_sampling_keeps_visible_pixels_and_is_deterministic_for_a_seed():
    model, x, mask = _setup()
    first = model.generate(x, mask, torch.Generator().manual_seed(5))
    assert torch.equal(first, model.generate(x, mask, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, model.generate(x, mask, torch.Generator().manual_seed(6)))
    assert torch.equal(first[mask == 0], x[mask == 0])


def test_training_loss_counts_only_the_hole():
    model, x, mask = _setup()
    ctx = model.sample_context(x, mask, torch.Generator().manual_seed(0))
    target = x.clone()
    target[mask == 0] = 1.0  # the visible part of a target is never used
    assert torch.equal(model.training_loss(x, mask, ctx), model.training_loss(x, mask, ctx, target=target))


def test_noise_context_gives_ours_a_forget_signal_at_the_noisiest_timestep():
    """At t = 999 the released target's input is the forget input itself (the hole is noise in both), so its forget
    term vanishes; the paper's T(n) (noise_context: noise) keeps the noise image around the hole, so it does not."""
    model, x, mask = _setup()
    ctx = model.sample_context(x, mask, torch.Generator().manual_seed(0))
    ctx["timesteps"] = torch.full_like(ctx["timesteps"], model.config.num_train_timesteps - 1)
    forget = Batch(x, mask, ctx, noise=noise_image(x, "batch-gaussian", torch.Generator().manual_seed(1)))

    def forget_term(**knobs):
        method = get_method("ours", tiny_unlearn_config(method="ours", **knobs))
        with torch.no_grad():
            target = method.forget_target(model, forget, None)
            return feature_distance(model.encode(x, mask, ctx), target, "none", forget.shard).item()

    released, paper = forget_term(), forget_term(noise_context="noise")
    assert released < 1e-3 * paper and paper > 0, (released, paper)
