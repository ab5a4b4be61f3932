"""A Hugging Face `datasets` folder (Dataset.save_to_disk) read lazily behind the reading interface every image set
shares (data/hf_dataset.py): the pixels an image folder of the same pictures gives, the splits, bit-identical
batches with workers, its files' hash in a training record, and one clear error for what it cannot read."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

datasets = pytest.importorskip("datasets")

from i2i_unlearn.config import DataConfig  # noqa: E402
from i2i_unlearn.data import load_dataset, open_dataset, open_split  # noqa: E402
from i2i_unlearn.data.file_hashes import FileHashes  # noqa: E402
from i2i_unlearn.data.source import NotInMemoryError  # noqa: E402
from i2i_unlearn.data.hf_dataset import HFDatasetImages  # noqa: E402
from i2i_unlearn.errors import UserError  # noqa: E402

CLASSES = ["cats", "dogs", "owls"]


def pictures(count: int, seed: int = 0) -> list[tuple[Image.Image, int]]:
    """Random RGB pictures of varied sizes, with a class each (every class, in turn)."""
    rng = np.random.default_rng(seed)
    return [(Image.fromarray(rng.integers(0, 256, (10 + i % 3, 12, 3), dtype=np.uint8)), i % len(CLASSES))
            for i in range(count)]


def save_hf(root: Path, items, ids: list | None = None, names=CLASSES) -> Path:
    columns = {"image": [image for image, _ in items], "label": [label for _, label in items]}
    features = {"image": datasets.Image(), "label": datasets.ClassLabel(names=list(names))}
    if ids is not None:
        columns["id"], features["id"] = ids, datasets.Value("string")
    datasets.Dataset.from_dict(columns, features=datasets.Features(features)).save_to_disk(str(root))
    return root


def save_folder(root: Path, items) -> Path:
    for row, (image, label) in enumerate(items):
        (root / CLASSES[label]).mkdir(parents=True, exist_ok=True)
        image.save(root / CLASSES[label] / f"{row:04d}.png")
    return root


def hf_config(root: Path, **values) -> DataConfig:
    return DataConfig(**{"dataset": "hf-dataset", "root": str(root), "image_size": 8, "channels": 3, **values})


def test_a_saved_dataset_is_read_lazily_and_gives_the_pixels_an_image_folder_of_the_same_pictures_gives(tmp_path):
    items = pictures(9)
    images = open_dataset(hf_config(save_hf(tmp_path / "hf", items)))
    folder = load_dataset(DataConfig(dataset="image-folder", root=str(save_folder(tmp_path / "folder", items)),
                                     image_size=8, channels=3))
    assert isinstance(images, HFDatasetImages) and images.class_names == CLASSES and images.name == "hf:hf"
    assert images.ids == [str(row) for row in range(9)] and images.labels.tolist() == [0, 1, 2] * 3
    # the folder lists class by class: its images are rows 0, 3, 6, 1, 4, ...
    by_class = sorted(range(9), key=lambda row: (items[row][1], row))
    assert torch.equal(images.load(by_class), folder.images)
    assert torch.equal(images.subset([4, 2]).load([1]), folder.images[by_class.index(2)][None])
    grey = open_dataset(hf_config(tmp_path / "hf", channels=1, image_size=6))
    assert grey.load([0, 1]).shape == (2, 1, 6, 6) and grey.image_shape == (1, 6, 6)
    with pytest.raises(NotInMemoryError, match="holds no pixels"):
        images.images


def test_batches_with_workers_are_bit_identical_and_the_hashed_split_keeps_images_when_rows_are_added(tmp_path):
    images = open_dataset(hf_config(save_hf(tmp_path / "hf", pictures(20))))
    read = [tuple(b) for b in images.batches(6, shuffle=True, seed=3)]
    for a, b in zip(read, images.batches(6, shuffle=True, seed=3, num_workers=2), strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b))

    hashed = {"split": "hashed", "test_fraction": 0.2, "val_fraction": 0.2}
    before = open_split(hf_config(save_hf(tmp_path / "small", pictures(60), [f"p{i}" for i in range(60)]), **hashed))
    more = pictures(90, seed=1)
    after = open_split(hf_config(save_hf(tmp_path / "large", pictures(60) + more[60:],
                                         [f"p{i}" for i in range(90)]), **hashed))
    assert all(image_id.startswith("p") for image_id in before.train.ids)   # ids come from the id column
    for part in ("train", "val", "test"):
        assert set(before.part(part).ids) <= set(after.part(part).ids)
        assert isinstance(after.part(part), HFDatasetImages)
    assert len(after.train) + len(after.val) + len(after.test) == 90


def test_its_hash_names_its_files_and_rows_and_a_training_record_keeps_it(tmp_path):
    from i2i_unlearn.train import input_hash
    images = open_dataset(hf_config(save_hf(tmp_path / "hf", pictures(9))))
    cache = FileHashes(tmp_path / "hashes.json")
    whole = images.content_hash(cache)
    assert whole == images.content_hash() and whole != images.subset([0, 1]).content_hash()
    assert (tmp_path / "hashes.json").is_file()   # each arrow file hashed once, kept for the next run
    other = open_dataset(hf_config(save_hf(tmp_path / "other", pictures(9, seed=5))))
    assert other.content_hash() != whole   # the same ids and classes, other pictures
    record = input_hash(images, tmp_path / "run")
    assert record == {"train_images": whole, "train_images_hash": "files"}


def test_classes_without_rows_are_no_classes(tmp_path):
    items = [(image, 2 * (label % 2)) for image, label in pictures(6)]   # cats and owls only
    images = open_dataset(hf_config(save_hf(tmp_path / "hf", items)))
    assert images.class_names == ["cats", "owls"] and images.labels.tolist() == [label // 2 for _, label in items]


def test_what_it_cannot_read_is_refused_with_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="needs data.root"):
        open_dataset(DataConfig(dataset="hf-dataset"))
    with pytest.raises(UserError, match="not a Hugging Face dataset folder"):
        open_dataset(hf_config(tmp_path))
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"x": [1]})}).save_to_disk(str(tmp_path / "dict"))
    with pytest.raises(UserError, match=r"holds a DatasetDict \(train\).*dict/train"):
        open_dataset(hf_config(tmp_path / "dict"))
    datasets.Dataset.from_dict({"image": [pictures(1)[0][0]], "label": [0]},
                               features=datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
                               ).save_to_disk(str(tmp_path / "plain"))
    with pytest.raises(UserError, match="no column of feature ClassLabel.*columns: image, label"):
        open_dataset(hf_config(tmp_path / "plain"))
    with pytest.raises(UserError, match="'id' column .* repeats values"):
        open_dataset(hf_config(save_hf(tmp_path / "twice", pictures(3), ["a", "b", "a"])))
    bad = datasets.Dataset.from_dict({"image": [{"bytes": b"not a png", "path": None}], "label": [0]},
                                     features=datasets.Features({"image": datasets.Image(),
                                                                 "label": datasets.ClassLabel(names=CLASSES)}))
    bad.save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(UserError, match="cannot read an image of rows 0..0 of hf:bad"):
        open_dataset(hf_config(tmp_path / "bad")).load([0])
