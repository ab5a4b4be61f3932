"""Every shipped model keeps the split it recorded: the permutation split of the built-in datasets is unchanged, a
record without `split` means it, and the hashed split is chosen only by an explicit config field."""
import json
from pathlib import Path

import pytest

from i2i_unlearn.config import DataConfig, TrainConfig, from_dict, recorded_data_config, to_dict
from i2i_unlearn.data import load_split
from i2i_unlearn.data.datasets import FASHION_MNIST_DEFAULT_ROOT
from i2i_unlearn.errors import UserError

PRETRAINED = Path(__file__).resolve().parents[2] / "pretrained"


def recorded_splits() -> dict[str, list[Path]]:
    """The shipped model folders that record their split, by their recorded data config (as JSON text)."""
    folders: dict[str, list[Path]] = {}
    for run in sorted(PRETRAINED.glob("*/run.json")):
        split = (json.loads(run.read_text()).get("inputs") or {}).get("split")
        data = json.loads((run.parent / "config.json").read_text())["training"]["data"]
        if split:
            folders.setdefault(json.dumps(data, sort_keys=True), []).append(run.parent)
    return folders


@pytest.mark.parametrize("data", sorted(recorded_splits()))
def test_every_shipped_model_keeps_its_recorded_split(data):
    config = recorded_data_config(json.loads(data))
    if config.dataset == "fashion-mnist" and not Path(FASHION_MNIST_DEFAULT_ROOT).is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    described = load_split(config).describe()
    for folder in recorded_splits()[data]:
        assert json.loads((folder / "run.json").read_text())["inputs"]["split"] == described, folder.name


def test_the_in_memory_content_hash_of_a_shipped_model_is_unchanged():
    run = json.loads((PRETRAINED / "mae-animal-mnist" / "run.json").read_text())
    assert load_split(DataConfig()).train.content_hash() == run["inputs"]["train_images"]


def test_the_split_rule_is_recorded_only_when_set():
    assert "split" not in to_dict(DataConfig()) and "test_fraction" not in to_dict(TrainConfig())["data"]
    assert recorded_data_config({"dataset": "image-folder", "root": "x"}).split is None   # the permutation
    hashed = DataConfig(split="hashed", test_fraction=0.1, val_fraction=0.05)
    assert to_dict(hashed)["split"] == "hashed" and from_dict(DataConfig, to_dict(hashed)) == hashed


@pytest.mark.parametrize("values, message", [
    ({"split": "random"}, "data.split must be one of permutation, hashed"),
    ({"split": "hashed"}, "split: hashed needs data.test_fraction and data.val_fraction"),
    ({"split": "hashed", "test_fraction": 0.6, "val_fraction": 0.5}, "their sum < 1"),
    ({"split": "hashed", "test_fraction": 0.0, "val_fraction": 0.1}, "test_fraction must be > 0"),
    ({"test_fraction": 0.1}, "belong to split: hashed"),
])
def test_a_wrong_split_config_is_refused(values, message):
    with pytest.raises(UserError, match=message):
        from_dict(DataConfig, values)
