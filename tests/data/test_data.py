from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i_unlearn.config import DataConfig, UnlearnConfig
from i2i_unlearn.data import load_dataset, load_split, make_unlearn_split
from i2i_unlearn.data.datasets import FASHION_MNIST_DEFAULT_ROOT, deduplicate
from i2i_unlearn.errors import UserError
from conftest import write_idx

ANIMALS = DataConfig()


def test_animal_mnist_loads_deduplicated_with_class_names():
    images = load_dataset(ANIMALS)
    assert images.class_names[2] == "Cat" and len(images.class_names) == 10
    assert len(images) == 10_000 - 284          # the package's exact duplicates are gone
    assert images.images.shape[1:] == (1, 32, 32) and 0 <= images.images.min() and images.images.max() <= 1
    flat = images.images.flatten(1)
    assert len(torch.unique(torch.cat([flat, images.labels[:, None].float()], 1), dim=0)) == len(images)


def test_deduplicate_keeps_first_of_each_exact_pair():
    pixels = np.array([[1, 2], [3, 4], [1, 2], [1, 2]], dtype=np.uint8)
    labels = np.array([0, 0, 0, 1])
    assert deduplicate(pixels, labels).tolist() == [0, 1, 3]   # same pixels, other class: kept


def test_split_is_a_pure_function_of_the_seed_and_disjoint():
    a, b = load_split(ANIMALS), load_split(ANIMALS)
    for part in ("train", "val", "test"):
        assert a.part(part).ids == b.part(part).ids
    assert not set(a.train.ids) & set(a.val.ids) and not set(a.train.ids) & set(a.test.ids)
    assert not set(a.val.ids) & set(a.test.ids)
    assert len(a.train) + len(a.val) + len(a.test) == len(load_dataset(ANIMALS))
    assert torch.bincount(a.test.labels).tolist() == [100] * 10
    assert torch.bincount(a.val.labels).tolist() == [50] * 10
    other = load_split(DataConfig(split_seed=1))
    assert other.test.ids != a.test.ids and other.val.ids != a.val.ids
    assert a.describe() == b.describe() and a.describe()["val"]["count"] == 500


def test_validation_comes_out_of_train_and_leaves_test_unchanged():
    """Models trained before the validation split keep their own split (and the same test images)."""
    before = load_split(DataConfig(val_per_class=0))
    after = load_split(ANIMALS)
    assert before.test.ids == after.test.ids and len(before.val) == 0
    assert set(after.train.ids) | set(after.val.ids) == set(before.train.ids)


def test_a_recorded_config_without_validation_keeps_its_old_split():
    from i2i_unlearn.config import recorded_data_config
    recorded = {"dataset": "animal-mnist", "image_size": 32, "channels": 1, "test_per_class": 100, "split_seed": 0}
    assert recorded_data_config(recorded).val_per_class == 0
    assert recorded_data_config({**recorded, "val_per_class": 50}).val_per_class == 50


def test_a_class_too_small_for_test_and_validation_is_refused(tmp_path):
    for name, count in (("big", 6), ("small", 3)):
        (tmp_path / name).mkdir()
        for i in range(count):
            Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    with pytest.raises(UserError, match="class 'small'.* 3 image"):
        load_split(DataConfig(dataset="image-folder", root=str(tmp_path), test_per_class=2, val_per_class=1))


def test_unlearning_on_validation_scores_validation_images():
    split = make_unlearn_split(ANIMALS, UnlearnConfig(forget_classes=["Cat"]), "val")
    parts = load_split(ANIMALS)
    assert split.eval_split == "val" and len(split.forget_eval) == 50 and len(split.retain_eval) == 450
    assert set(split.forget_eval.ids + split.retain_eval.ids) <= set(parts.val.ids)
    assert not set(split.forget_train.ids + split.retain_train.ids) & (set(parts.val.ids) | set(parts.test.ids))


def test_unlearn_split_sets():
    split = make_unlearn_split(ANIMALS, UnlearnConfig(forget_classes=["cat"], retain_ratio=2.0))
    assert split.forget_class_names == ["Cat"]
    assert set(split.forget_train.labels.tolist()) == {2} and set(split.forget_eval.labels.tolist()) == {2}
    assert 2 not in split.retain_train.labels.tolist() and 2 not in split.retain_eval.labels.tolist()
    assert len(split.retain_train) == 2 * len(split.forget_train)
    test = load_split(ANIMALS).test
    assert not set(split.forget_train.ids + split.retain_train.ids) & set(test.ids)   # never a test image


def test_forget_by_file_list(tmp_path):
    train = load_split(ANIMALS).train
    listing = tmp_path / "forget.txt"
    listing.write_text("\n".join(train.ids[:5]) + "\n")
    split = make_unlearn_split(ANIMALS, UnlearnConfig(forget_files=str(listing)))
    assert split.forget_train.ids == train.ids[:5]
    assert not set(split.retain_train.ids) & set(train.ids[:5])


def test_unknown_class_lists_the_known_ones():
    with pytest.raises(UserError, match="unknown class name.*Unicorn.*known: Bear, Bird, Cat"):
        make_unlearn_split(ANIMALS, UnlearnConfig(forget_classes=["Unicorn"]))


def test_empty_forget_set_is_refused(tmp_path):
    with pytest.raises(UserError, match="forget set is empty"):
        make_unlearn_split(ANIMALS, UnlearnConfig(forget_classes=[]))


def test_forget_class_in_retain_set_is_refused():
    with pytest.raises(UserError, match="Cat are both forgotten and retained"):
        make_unlearn_split(ANIMALS, UnlearnConfig(forget_classes=["Cat"], retain_classes=["Dog", "Cat"]))


def test_missing_and_empty_image_folders(tmp_path):
    with pytest.raises(UserError, match="image folder not found"):
        load_dataset(DataConfig(dataset="image-folder", root=str(tmp_path / "nope")))
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    with pytest.raises(UserError, match="no images found"):
        load_dataset(DataConfig(dataset="image-folder", root=str(tmp_path / "empty")))


def test_image_folder_reads_rgb_and_grey_and_names_a_corrupt_file(tmp_path):
    for cls, colour in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 50), colour).save(tmp_path / cls / f"{i}.png")
    rgb = load_dataset(DataConfig(dataset="image-folder", root=str(tmp_path), channels=3, image_size=16))
    assert rgb.class_names == ["cats", "dogs"] and rgb.images.shape == (6, 3, 16, 16)
    assert torch.allclose(rgb.images[0, :, 5, 5], torch.tensor([1.0, 0.0, 0.0]))
    grey = load_dataset(DataConfig(dataset="image-folder", root=str(tmp_path), channels=1, image_size=16))
    assert grey.images.shape == (6, 1, 16, 16)
    (tmp_path / "dogs" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(UserError, match="cannot read image .*broken.png"):
        load_dataset(DataConfig(dataset="image-folder", root=str(tmp_path)))





@pytest.mark.skipif(not Path(FASHION_MNIST_DEFAULT_ROOT).is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_loads_from_where_the_debian_package_installs_it():
    images = load_dataset(DataConfig(dataset="fashion-mnist"))   # no root: the package's folder
    assert images.class_names[0] == "T-shirt" and images.images.shape[1:] == (1, 32, 32)
    assert 69_000 < len(images) <= 70_000                        # 70,000 minus exact duplicates
    assert torch.bincount(images.labels).min() > 6_500


def test_fashion_mnist_reads_idx_files_from_any_folder(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    images = load_dataset(DataConfig(dataset="fashion-mnist", root=str(tmp_path)))
    assert len(images) == 10 and images.images.shape[1:] == (1, 32, 32)
    assert images.class_names[0] == "T-shirt"
    with pytest.raises(UserError, match="Fashion-MNIST folder not found"):
        load_dataset(DataConfig(dataset="fashion-mnist", root=str(tmp_path / "nope")))


def test_a_proxy_dataset_replaces_the_retain_set(tmp_path):
    for cls in ("shapes", "blobs"):
        (tmp_path / cls).mkdir()
        for i in range(4):
            Image.new("L", (28, 28), 40 * i).save(tmp_path / cls / f"{i}.png")
    proxy = DataConfig(dataset="image-folder", root=str(tmp_path), test_per_class=1, val_per_class=1)
    split = make_unlearn_split(ANIMALS, UnlearnConfig(forget_classes=["Cat"], proxy=proxy, proxy_classes=["blobs"]))
    assert split.retain_train.name == f"folder:{tmp_path.name}" and len(split.retain_train) == 2
    assert set(split.retain_train.labels.tolist()) == {0}          # only "blobs"
    assert 2 not in split.retain_eval.labels.tolist() and len(split.retain_eval) == 900   # real retain test images
