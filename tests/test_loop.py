import json
import time

import pytest
import torch

import i2i_unlearn.loop as loop
from i2i_unlearn.errors import UserError
from i2i_unlearn.methods.ours import Ours
from i2i_unlearn.models import load_model
from i2i_unlearn.unlearn import unlearn
from conftest import tiny_unlearn_config


def test_lr_schedule_warms_up_then_decays():
    from i2i_unlearn.config import OptimConfig
    config = OptimConfig(warmup_steps=10, schedule="cosine")
    factors = [loop.lr_factor(s, 100, config) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1.0 and factors[99] < 0.01
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))


def test_a_killed_run_resumed_ends_with_the_same_weights(tiny_model_dir, tmp_path, monkeypatch):
    config = tiny_unlearn_config(steps=6, checkpoint_every=2)
    unlearn(tiny_model_dir, config, tmp_path / "straight")

    real_generator = loop.step_generator

    def killed_at_step_5(seed, step, process=0):
        if step == 5:
            raise KeyboardInterrupt
        time.sleep(0.3)   # the killed run's time, which the resumed run's total must include
        return real_generator(seed, step, process)
    monkeypatch.setattr(loop, "step_generator", killed_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        unlearn(tiny_model_dir, config, tmp_path / "resumed")
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()) == ["step-0000004"]
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    killed_wall_time = loop.resumed_wall_time(tmp_path / "resumed")
    monkeypatch.setattr(loop, "step_generator", real_generator)
    with pytest.raises(UserError, match="already exists"):
        unlearn(tiny_model_dir, config, tmp_path / "resumed")
    unlearn(tiny_model_dir, config, tmp_path / "resumed", resume=True)

    straight, resumed = load_model(tmp_path / "straight"), load_model(tmp_path / "resumed")
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    log = [json.loads(line) for line in (tmp_path / "resumed" / "unlearn_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2, 3, 4, 5, 6]
    # the wall time counts the killed run up to its checkpoint (4 sleeps of 0.3 s) plus the resumed run
    assert killed_wall_time >= 1.2
    run = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert run["wall_time_total_s"] >= killed_wall_time + run["wall_time_s"] - 0.1


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_model_dir, tmp_path, monkeypatch):
    calls = {"n": 0}
    real_loss = Ours.loss

    def nan_on_fourth_step(self, *args):
        calls["n"] += 1
        terms = real_loss(self, *args)
        return {k: v * float("nan") for k, v in terms.items()} if calls["n"] == 4 else terms
    monkeypatch.setattr(Ours, "loss", nan_on_fourth_step)
    with pytest.raises(UserError, match=r"loss became nan at step 3.*last good checkpoint \(step 2\)"):
        unlearn(tiny_model_dir, tiny_unlearn_config(steps=6, checkpoint_every=2), tmp_path / "out")
    assert (tmp_path / "out" / "checkpoints" / "step-0000002" / "model.safetensors").is_file()
    assert not (tmp_path / "out" / "model.safetensors").exists()


def _killed_at(step_to_kill, monkeypatch):
    real_generator = loop.step_generator

    def generator(seed, step, process=0):
        if step == step_to_kill:
            raise KeyboardInterrupt
        return real_generator(seed, step, process)
    monkeypatch.setattr(loop, "step_generator", generator)
    return real_generator


def test_diffusion_training_with_ema_resumed_ends_bit_identical(tmp_path, monkeypatch):
    from conftest import FEW_HELD_OUT, TINY_DIFFUSION, tiny_train_config
    from i2i_unlearn.config import DataConfig
    from i2i_unlearn.train import train
    config = tiny_train_config(steps=5, model=TINY_DIFFUSION)
    config.ema_decay = 0.99
    config.data = DataConfig(**FEW_HELD_OUT)   # each finished run's validation check scores 50 images, not 500
    train(config, tmp_path / "straight")
    real_generator = _killed_at(3, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed")
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints" / "step-0000002").iterdir()) == [
        "ema.safetensors", "model.safetensors", "optimizer.safetensors", "state.json"]
    monkeypatch.setattr(loop, "step_generator", real_generator)
    train(config, tmp_path / "resumed", resume=True)
    straight, resumed = load_model(tmp_path / "straight"), load_model(tmp_path / "resumed")
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_the_ema_weights_are_saved_and_generate(tmp_path, monkeypatch):
    """With ema_decay the saved weights are the loop's average, not its last step; without, the last step."""
    from conftest import FEW_HELD_OUT, TINY_DIFFUSION, tiny_train_config
    from i2i_unlearn.config import DataConfig
    from i2i_unlearn.train import train
    seen = {}
    real_copy_to = None

    import diffusers.training_utils as training_utils
    real_copy_to = training_utils.EMAModel.copy_to

    def spy_copy_to(self, parameters):
        parameters = list(parameters)
        seen["last_step"] = [p.detach().clone() for p in parameters]
        seen["average"] = [p.detach().clone() for p in self.shadow_params]
        real_copy_to(self, parameters)
    monkeypatch.setattr(training_utils.EMAModel, "copy_to", spy_copy_to)
    config = tiny_train_config(steps=4, model=TINY_DIFFUSION)
    config.ema_decay = 0.99
    config.data = DataConfig(**FEW_HELD_OUT)   # the validation check after training scores 50 images, not 500
    train(config, tmp_path / "ema")
    saved = [p for p in load_model(tmp_path / "ema").parameters()]
    assert len(saved) == len(seen["average"])
    assert all(torch.equal(s, a) for s, a in zip(saved, seen["average"]))
    assert any(not torch.equal(s, last) for s, last in zip(saved, seen["last_step"]))
    # and the loaded EMA weights are what generates: the output differs from the last step's weights
    model = load_model(tmp_path / "ema")
    images = torch.rand(2, 1, 32, 32)
    mask = torch.zeros_like(images)
    mask[..., 8:24, 8:24] = 1
    ema_output = model.generate(images, mask, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p, last in zip(model.parameters(), seen["last_step"]):
            p.copy_(last)
    assert not torch.equal(ema_output, model.generate(images, mask, torch.Generator().manual_seed(0)))


def test_a_resume_with_another_config_is_refused_and_names_the_keys(tiny_model_dir, tmp_path, monkeypatch):
    config = tiny_unlearn_config(steps=6, checkpoint_every=2)
    real_generator = _killed_at(3, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        unlearn(tiny_model_dir, config, tmp_path / "run")
    monkeypatch.setattr(loop, "step_generator", real_generator)
    changed = tiny_unlearn_config(steps=6, checkpoint_every=2, alpha=0.5)
    changed.optim.lr = 0.01
    with pytest.raises(UserError, match=r"config differs.*alpha \(0.25 -> 0.5\), optim.lr \(0.001 -> 0.01\)"):
        unlearn(tiny_model_dir, changed, tmp_path / "run", resume=True)
    # only the length may change, and how the batches are read (the same batches)
    longer = tiny_unlearn_config(steps=8, checkpoint_every=2, data_workers=1)
    unlearn(tiny_model_dir, longer, tmp_path / "run", resume=True)
    assert (tmp_path / "run" / "model.safetensors").is_file()


class _NoisyQuadratic(torch.nn.Module):
    """loss = sum(c * (w - noise)^2), the noise drawn from the batch's generator: the gradient at w is
    2 c (w - noise), by hand."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
        self.c = torch.tensor([1.0, 3.0, 0.5])

    def noise(self, generator):
        return torch.randn(3, generator=generator)

    def forward(self, batch):
        return {"loss": (self.c * (self.w - self.noise(batch["generator"])) ** 2).sum()}


def test_sam_takes_the_gradient_at_the_moved_weights_with_the_steps_own_draws():
    """SAM: the step's gradient becomes the gradient at w + rho g/||g|| (g: the gradient at w), computed with the
    same random draws as the first pass; the weights are back to w, bit for bit."""
    objective = _NoisyQuadratic()
    accelerator = loop.make_accelerator()
    generator = torch.Generator().manual_seed(7)
    started = generator.get_state()
    noise = objective.noise(torch.Generator().manual_seed(7))
    w = objective.w.detach().clone()
    objective({"generator": generator})["loss"].backward()
    g = 2 * objective.c * (w - noise)
    assert torch.allclose(objective.w.grad, g)
    optimizer = torch.optim.SGD([objective.w], lr=0.1)
    loop._sharpness_aware_gradient(objective, {"generator": generator}, [objective.w], 0.05, optimizer, accelerator,
                                   None, started)
    moved = w + 0.05 * g / g.norm()
    assert torch.allclose(objective.w.grad, 2 * objective.c * (moved - noise), atol=1e-6)
    assert not torch.allclose(objective.w.grad, g, atol=1e-3)
    assert torch.equal(objective.w.detach(), w)


def test_sam_unlearning_is_recorded_and_moves_the_weights_elsewhere(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file
    plain = tiny_unlearn_config(steps=3)
    sharp = tiny_unlearn_config(steps=3)
    sharp.optim.sam_rho = 0.05
    unlearn(tiny_model_dir, plain, tmp_path / "plain")
    unlearn(tiny_model_dir, sharp, tmp_path / "sam")
    recorded = [json.loads((tmp_path / name / "run.json").read_text())["config"]["optim"] for name in ("plain", "sam")]
    assert "sam_rho" not in recorded[0] and recorded[1]["sam_rho"] == 0.05
    a, b = (load_file(tmp_path / name / "model.safetensors") for name in ("plain", "sam"))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    from i2i_unlearn.config import OptimConfig
    with pytest.raises(UserError, match="sam_rho must be >= 0"):
        OptimConfig(sam_rho=-0.1)
