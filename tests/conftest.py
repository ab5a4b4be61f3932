"""Shared fixtures: a tiny real MAE trained for a few steps on real Animal-MNIST images."""
from pathlib import Path

import pytest
import torch

from i2i_unlearn.config import OptimConfig, TaskConfig, TrainConfig, UnlearnConfig
from i2i_unlearn.train import train

TINY_MAE = {"family": "mae", "image_size": 32, "channels": 1, "patch_size": 8, "hidden_size": 32, "num_layers": 1,
            "num_heads": 2, "intermediate_size": 64, "decoder_hidden_size": 32, "decoder_num_layers": 1,
            "decoder_num_heads": 2, "decoder_intermediate_size": 64}


def tiny_train_config(steps: int = 4) -> TrainConfig:
    return TrainConfig(model=dict(TINY_MAE), steps=steps, batch_size=16, checkpoint_every=2, log_every=2,
                       tasks=[TaskConfig("center-inpaint", 0.5)],
                       optim=OptimConfig(lr=1e-3, warmup_steps=0, schedule="constant"))


def tiny_unlearn_config(**overrides) -> UnlearnConfig:
    values = dict(forget_classes=["Cat"], steps=4, batch_size=8, checkpoint_every=2, log_every=1,
                  tasks=[TaskConfig("center-inpaint", 0.5)], optim=OptimConfig(lr=1e-3, warmup_steps=0))
    values.update(overrides)
    return UnlearnConfig(**values)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny MAE directory as `i2i-unlearn train` writes it. Tests must not modify it."""
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("models") / "tiny-mae"
    train(tiny_train_config(), out)
    return out
