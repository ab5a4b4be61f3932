"""The options for large models (issue 34): bf16 autocast (`mixed_precision`) and gradient checkpointing, in the loop
every run shares, recorded in the run config when set."""
import copy
import json

import pytest
import torch
from conftest import TINY_MODELS, tiny_unlearn_config

from i2i_unlearn.config import TaskConfig
from i2i_unlearn.errors import UserError
from i2i_unlearn.models import build_model
from i2i_unlearn.tasks import make_mask
from i2i_unlearn.unlearn import unlearn

pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py


def _log(out) -> list[dict]:
    return [json.loads(line) for line in (out / "unlearn_log.jsonl").read_text().splitlines()]


def test_bf16_and_gradient_checkpointing_run_unlearning_and_are_recorded(tiny_model_dir, tmp_path):
    runs = {"fp32": {}, "bf16": {"mixed_precision": "bf16"}, "checkpointed": {"gradient_checkpointing": True}}
    logs = {}
    for name, options in runs.items():
        unlearn(tiny_model_dir, tiny_unlearn_config(steps=2, checkpoint_every=2, **options), tmp_path / name)
        logs[name] = _log(tmp_path / name)
        recorded = json.loads((tmp_path / name / "run.json").read_text())["config"]
        assert {key: recorded[key] for key in options} == options
        assert not {"mixed_precision", "gradient_checkpointing"} - set(options) & set(recorded)  # unset: unrecorded
    fp32, bf16 = logs["fp32"][0]["forget"], logs["bf16"][0]["forget"]
    # step 1's forget term in bfloat16: finite, not the float32 number, within bfloat16's few significant digits
    assert torch.isfinite(torch.tensor(bf16)) and bf16 != fp32 and bf16 == pytest.approx(fp32, rel=0.05)
    # checkpointing recomputes the same activations: the same run, up to float rounding
    for plain, checkpointed in zip(logs["fp32"], logs["checkpointed"], strict=True):
        assert checkpointed["loss"] == pytest.approx(plain["loss"], rel=1e-5, abs=1e-7)


def test_an_unknown_precision_or_one_the_launch_contradicts_is_refused_before_anything_is_written(
        tiny_model_dir, tmp_path, monkeypatch):
    with pytest.raises(UserError, match="unknown mixed_precision 'fp8'; available: no, bf16"):
        unlearn(tiny_model_dir, tiny_unlearn_config(mixed_precision="fp8"), tmp_path / "fp8")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")   # what `accelerate launch --mixed_precision bf16` sets
    with pytest.raises(UserError, match="accelerate launch asks for mixed precision bf16, the run for no"):
        unlearn(tiny_model_dir, tiny_unlearn_config(), tmp_path / "launched")
    assert not (tmp_path / "fp8").exists() and not (tmp_path / "launched").exists()


class _Calls:
    """Counts module forward calls (a recomputed block runs its forward again in the backward pass)."""

    def __enter__(self):
        self.count = 0
        self.handle = torch.nn.modules.module.register_module_forward_hook(self._seen)
        return self

    def _seen(self, module, inputs, output):
        self.count += 1

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.mark.parametrize("family", ["mae", "diffusion", "vqgan"])
def test_gradient_checkpointing_recomputes_blocks_and_gives_the_same_gradients(family):
    torch.manual_seed(0)
    plain = build_model(TINY_MODELS[family]).train()
    checkpointed = copy.deepcopy(plain)
    checkpointed.enable_gradient_checkpointing()
    x = torch.rand(4, *plain.image_shape, generator=torch.Generator().manual_seed(1))
    mask = make_mask(TaskConfig("center-inpaint", 0.5), 4, x.shape[-1], plain.mask_grid)
    ctx = plain.sample_context(x, mask, torch.Generator().manual_seed(2))
    calls = {}
    for name, model in (("plain", plain), ("checkpointed", checkpointed)):
        with _Calls() as counted:
            model.training_loss(x, mask, ctx).backward()
        calls[name] = counted.count
    assert calls["checkpointed"] > calls["plain"]   # blocks ran again in the backward pass
    grads = {name: grad for name, grad in ((n, p.grad) for n, p in plain.named_parameters()) if grad is not None}
    assert grads and {n for n, p in checkpointed.named_parameters() if p.grad is not None} == set(grads)
    for name, parameter in checkpointed.named_parameters():
        if parameter.grad is not None:
            assert torch.allclose(parameter.grad, grads[name], rtol=1e-5, atol=1e-7), name
