"""Shared fixtures: tiny real models of every family, trained a few steps on real Animal-MNIST images."""
import os
import sys
from pathlib import Path

# benchmarks/*.py import their shared helpers as `_shared` (benchmarks/_shared.py), which `python benchmarks/<x>.py`
# finds beside the script; the tests that load a script by its file need the folder on the path too.
sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

# Tiny models run as fast on one thread, and a second torch thread per test process (and per
# subprocess a test starts) only fights whatever else runs on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

torch.set_num_threads(1)

import i2i_unlearn.unlearn
# The retain check after each unlearning scores 128 validation images per side; with tiny models 16
# show the same thing, and the suite runs dozens of unlearnings in process.
i2i_unlearn.unlearn.CHECK_IMAGES = 16
import i2i_unlearn.host
# Every run records the host's matmul throughput, measured for 0.3 s: a few hundred runs in process would spend
# over a minute of the suite on it. A hundredth of a second still measures it (a few 512x512 products).
i2i_unlearn.host.MEASURE_SECONDS = 0.01
import i2i_unlearn.evaluation.audit.probe
# An audit's tell refits its probe 100 times per model on shuffled labels (the permutation test: 500 scikit-learn
# fits); the audits the tests make by AuditOptions() or `i2i-unlearn audit` draw 10 (p-values to 1/11).
# tests/evaluation/audit/test_audit.py checks the permutation test itself, with its own counts.
i2i_unlearn.evaluation.audit.probe.PERMUTATIONS = 10


def _read_once(read):
    """`read` (a dataset loader) run once per data config in the session; each call gets its own copy of the images,
    so no test sees what another did to them. Every split, training, unlearning and evaluation reads Animal-MNIST
    again (gunzip, pad, deduplicate: about 0.15 s), a few hundred times in the suite; the copy takes a fifth of that."""
    import functools
    import json
    from i2i_unlearn.config import to_dict
    from i2i_unlearn.data.source import ImageSet
    memo = {}

    @functools.wraps(read)
    def read_once(config):
        key = json.dumps(to_dict(config), sort_keys=True)
        if key not in memo:
            memo[key] = read(config)
        images = memo[key]
        return ImageSet(images.images.clone(), images.labels.clone(), list(images.class_names), list(images.ids),
                        images.name)
    return read_once


import i2i_unlearn.data.datasets
i2i_unlearn.data.datasets.DATASETS["animal-mnist"] = _read_once(i2i_unlearn.data.datasets.DATASETS["animal-mnist"])

from i2i_unlearn.config import (DataConfig, EvaluatorConfig, OptimConfig, TaskConfig, TokenizerTrainConfig, TrainConfig,
                                UnlearnConfig)
from i2i_unlearn.evaluation.evaluator import train_evaluator
from i2i_unlearn.train import train
from i2i_unlearn.train_tokenizer import train_tokenizer

TINY_MAE = {"family": "mae", "image_size": 32, "channels": 1, "patch_size": 8, "hidden_size": 32, "num_layers": 1,
            "num_heads": 2, "intermediate_size": 64, "decoder_hidden_size": 32, "decoder_num_layers": 1,
            "decoder_num_heads": 2, "decoder_intermediate_size": 64}

TINY_DIFFUSION = {"family": "diffusion", "block_out_channels": [8, 16], "down_block_types": ["DownBlock2D"] * 2,
                  "up_block_types": ["UpBlock2D"] * 2, "norm_num_groups": 4, "sampler_steps": 3}
TINY_TOKENIZER = {"block_out_channels": [8, 16, 16], "norm_num_groups": 8, "latent_channels": 4, "codebook_size": 16}
# A random tokenizer, for protocol tests that need no trained one; the vqgan fixture trains one.
TINY_VQGAN = {"family": "vqgan", "tokenizer": TINY_TOKENIZER, "width": 32, "heads": 2, "mlp_ratio": 2,
              "encoder_layers": 1, "decoder_layers": 1, "decode_steps": 3}
TINY_MODELS = {"mae": TINY_MAE, "diffusion": TINY_DIFFUSION, "vqgan": TINY_VQGAN}


def tiny_train_config(steps: int = 4, model: dict = TINY_MAE) -> TrainConfig:
    return TrainConfig(model=dict(model), steps=steps, batch_size=16, checkpoint_every=2, log_every=2,
                       tasks=[TaskConfig("center-inpaint", 0.5)],
                       optim=OptimConfig(lr=1e-3, warmup_steps=0, schedule="constant"))


def tiny_unlearn_config(**overrides) -> UnlearnConfig:
    values = dict(forget_classes=["Cat"], steps=4, batch_size=8, checkpoint_every=2, log_every=1,
                  tasks=[TaskConfig("center-inpaint", 0.5)], optim=OptimConfig(lr=1e-3, warmup_steps=0))
    values.update(overrides)
    return UnlearnConfig(**values)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny networks: as fast, and no stall when the other core is busy
    (the session's model fixtures leave two threads set)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny MAE directory as `i2i-unlearn train` writes it. Tests must not modify it."""
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("models") / "tiny-mae"
    train(tiny_train_config(), out)
    return out


# 5 test and 5 validation images per class (not 100 and 50): for a model whose held-out images a test scores
# all of (evaluate, audit, a benchmark), when what it checks does not depend on how many there are
FEW_HELD_OUT = {"test_per_class": 5, "val_per_class": 5}


@pytest.fixture(scope="session")
def few_held_out_model_dir(tmp_path_factory) -> Path:
    """tiny_model_dir's recipe on a split holding out FEW_HELD_OUT images. Tests must not modify it."""
    recipe = tiny_train_config()
    recipe.data = DataConfig(**FEW_HELD_OUT)
    out = tmp_path_factory.mktemp("models") / "tiny-mae-few-held-out"
    train(recipe, out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    """A trained tiny model directory per family (the vqgan one on a tiny trained tokenizer)."""
    root = tmp_path_factory.mktemp("families")
    train(tiny_train_config(model=TINY_DIFFUSION), root / "diffusion")
    train_tokenizer(TokenizerTrainConfig(tokenizer=TINY_TOKENIZER, steps=4, batch_size=8, adversarial_start=2,
                                         checkpoint_every=2, log_every=2), root / "tokenizer")
    vqgan = {k: v for k, v in TINY_VQGAN.items() if k != "tokenizer"}
    train(tiny_train_config(model={**vqgan, "tokenizer_path": str(root / "tokenizer")}), root / "vqgan")
    return {"mae": tiny_model_dir, "diffusion": root / "diffusion", "vqgan": root / "vqgan"}


def write_idx(path: Path, array) -> None:
    """An IDX file as Fashion-MNIST ships them (uint8, big-endian header)."""
    import struct
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    path.write_bytes(header + array.astype("uint8").tobytes())


@pytest.fixture(scope="session")
def fashion_mnist_root(tmp_path_factory) -> Path:
    """A folder of Fashion-MNIST-format IDX files (random 28x28 images, 200 per class: enough for the default
    100 test and 50 validation images per class), so no test needs Debian's dataset-fashion-mnist package."""
    import numpy as np
    root = tmp_path_factory.mktemp("fashion-mnist")
    rng = np.random.default_rng(0)
    for prefix, per_class in (("train", 160), ("t10k", 40)):
        labels = np.repeat(np.arange(10), per_class)
        write_idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (len(labels), 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="session")
def tiny_evaluator_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluators") / "tiny"
    train_evaluator(EvaluatorConfig(steps=30, batch_size=64, width=8, feature_dim=16, log_every=10), out)
    return out
