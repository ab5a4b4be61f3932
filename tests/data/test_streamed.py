"""An image folder streamed from disk (data/folder.py) behind the reading interface the in-memory sets share
(data/source.py): the same images, the same splits, bit-identical batches with workers, and no whole set in memory."""
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i_unlearn.config import DataConfig
from i2i_unlearn.data import FolderImages, ImageSet, load_dataset, load_split, open_dataset, open_split
from i2i_unlearn.data.source import NotInMemoryError
from i2i_unlearn.errors import UserError


def write_folder(root: Path, counts: dict[str, int], first: int = 0, size: int = 12, seed: int = 0) -> None:
    """Tiny random RGB PNGs, `counts[class]` of them per class folder, named first, first + 1, ..."""
    rng = np.random.default_rng(seed)
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(first, first + count):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:04d}.png")


def folder_config(root: Path, **values) -> DataConfig:
    return DataConfig(dataset="image-folder", root=str(root), image_size=8, channels=3, **values)


HASHED = {"split": "hashed", "test_fraction": 0.2, "val_fraction": 0.1}
PERMUTATION = {"test_per_class": 3, "val_per_class": 2}


def test_a_streamed_folder_holds_no_pixels_and_loads_what_the_in_memory_loader_reads(tmp_path):
    write_folder(tmp_path, {"cats": 5, "dogs": 4})
    config = folder_config(tmp_path)
    streamed, in_memory = open_dataset(config), load_dataset(config)
    assert isinstance(streamed, FolderImages) and isinstance(in_memory, ImageSet)
    assert streamed.ids == in_memory.ids and streamed.class_names == in_memory.class_names == ["cats", "dogs"]
    assert torch.equal(streamed.labels, in_memory.labels) and streamed.name == in_memory.name
    assert torch.equal(streamed.load(range(len(streamed))), in_memory.images)
    assert torch.equal(streamed.subset([7, 1]).load([0, 1]), in_memory.load([7, 1]))
    assert streamed.image_shape == in_memory.image_shape == (3, 8, 8)
    with pytest.raises(NotInMemoryError, match="holds no pixels.*load\\(index\\) or batches"):
        streamed.images


@pytest.mark.parametrize("rule", [PERMUTATION, HASHED], ids=["permutation", "hashed"])
def test_the_split_of_a_streamed_folder_is_the_split_of_the_folder_in_memory(tmp_path, rule):
    write_folder(tmp_path, {"cats": 30, "dogs": 25, "owls": 20})
    config = folder_config(tmp_path, **rule)
    streamed, in_memory = open_split(config), load_split(config)
    for part in ("train", "val", "test"):
        assert streamed.part(part).ids == in_memory.part(part).ids
        assert isinstance(streamed.part(part), FolderImages)
    assert streamed.describe() == in_memory.describe()
    assert len(in_memory.test) and len(in_memory.val)


def test_adding_images_moves_no_image_between_parts_of_the_hashed_split(tmp_path):
    grows = tmp_path / "grows"
    write_folder(grows, {"cats": 30, "dogs": 30})
    before = open_split(folder_config(grows, **HASHED))
    write_folder(grows, {"cats": 20, "dogs": 5, "owls": 25}, first=100, seed=1)   # more images, a new class
    after = open_split(folder_config(grows, **HASHED))
    for part in ("train", "val", "test"):
        assert set(before.part(part).ids) <= set(after.part(part).ids)
    assert len(after.train) + len(after.val) + len(after.test) == 110
    # the permutation split (every recorded model's) is no such thing: the same addition reshuffles a class
    permuted = tmp_path / "permuted"
    write_folder(permuted, {"cats": 30})
    old_test = open_split(folder_config(permuted, **PERMUTATION)).test.ids
    write_folder(permuted, {"cats": 20}, first=100, seed=1)
    assert not set(old_test) <= set(open_split(folder_config(permuted, **PERMUTATION)).test.ids)


def test_the_hashed_split_depends_on_the_seed_and_refuses_a_class_with_an_empty_part(tmp_path):
    write_folder(tmp_path, {"cats": 40, "dogs": 40})
    one, other = (open_split(folder_config(tmp_path, **HASHED, split_seed=seed)) for seed in (0, 1))
    assert one.test.ids != other.test.ids
    write_folder(tmp_path, {"ants": 1})
    with pytest.raises(UserError, match="class 'ants' of folder:.* 1 image.* none falls to (test|train)"):
        open_split(folder_config(tmp_path, **HASHED))


def test_batches_are_bit_identical_for_a_seed_with_or_without_workers(tmp_path):
    write_folder(tmp_path, {"cats": 23, "dogs": 18})
    streamed = open_dataset(folder_config(tmp_path))

    def read(images, **options):
        return [tuple(batch) for batch in images.batches(8, shuffle=True, seed=5, **options)]

    alone, with_workers = read(streamed), read(streamed, num_workers=2)
    assert len(alone) == 6 and [len(b[0]) for b in alone][-1] == 1
    for a, b in zip(alone, with_workers, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert torch.equal(torch.cat([b[2] for b in alone]).sort().values, torch.arange(len(streamed)))
    assert not torch.equal(alone[0][2], torch.arange(8))   # shuffled, and by the seed:
    assert not torch.equal(alone[0][2], next(iter(streamed.batches(8, shuffle=True, seed=6))).index)
    # the in-memory set gives the same batches through the same interface
    for a, b in zip(alone, read(load_dataset(folder_config(tmp_path))), strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert [len(b.images) for b in streamed.batches(8, drop_last=True)] == [8] * 5


def test_a_corrupt_image_is_named_in_one_clear_error_with_or_without_workers(tmp_path):
    write_folder(tmp_path, {"cats": 3, "dogs": 3})
    (tmp_path / "dogs" / "broken.png").write_bytes(b"not a png at all")
    streamed = open_dataset(folder_config(tmp_path))   # listing reads no image
    for workers in (0, 2):
        with pytest.raises(UserError) as error:
            list(streamed.batches(4, num_workers=workers))
        assert str(error.value).startswith("cannot read image ") and "broken.png" in str(error.value)
        assert "Traceback" not in str(error.value)


def test_streaming_a_folder_holds_a_few_batches_not_all_its_images(tmp_path):
    """tracemalloc sees the decoded numpy pixels (not torch's own allocations): reading every batch keeps its peak
    within a few batches, while reading the whole folder into memory (the check's control) holds every image."""
    write_folder(tmp_path, {"a": 100, "b": 100, "c": 100}, size=16)
    config = DataConfig(dataset="image-folder", root=str(tmp_path), image_size=64, channels=3)
    streamed = open_dataset(config)
    image_bytes, batch_size = 3 * 64 * 64 * 4, 10

    def peak(read) -> int:
        tracemalloc.start()
        try:
            read()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    streaming = peak(lambda: [batch.images.sum() for batch in streamed.batches(batch_size)])
    whole = peak(streamed.materialize)
    assert streaming < 4 * batch_size * image_bytes, streaming
    assert whole > 0.9 * len(streamed) * image_bytes, whole    # the same check fails where everything is held
