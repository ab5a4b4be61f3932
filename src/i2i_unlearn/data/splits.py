"""Seeded splits of a dataset: held-out test and validation images per class, the rest for training. Two rules,
both needing labels and ids only (no pixels): the per-class permutation every recorded model used, and the hashed
split, where each image's part is a pure function of its id and the split seed."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from i2i_unlearn.checkpoints import sha256_text
from i2i_unlearn.config import DataConfig
from i2i_unlearn.data.datasets import load_dataset, open_dataset
from i2i_unlearn.data.source import ImageSource
from i2i_unlearn.errors import UserError


@dataclass
class Split:
    """Disjoint train / validation / test parts of a dataset, each a pure function of the split seed (and, for the
    hashed split, of each image's id). The parts are in memory or streamed, as the dataset was."""
    train: ImageSource
    val: ImageSource
    test: ImageSource

    def part(self, name: str) -> ImageSource:
        if name not in SPLIT_PARTS:
            raise UserError(f"unknown split {name!r}; available: {', '.join(SPLIT_PARTS)}")
        return getattr(self, name)

    def describe(self) -> dict:
        """Counts and id hashes of every part: recorded beside every run, so a result names its split."""
        return {name: {"count": len(part), "ids_sha256": sha256_text("\n".join(part.ids))}
                for name, part in (("train", self.train), ("val", self.val), ("test", self.test))}

SPLIT_PARTS = ("train", "val", "test")

def split_dataset(images: ImageSource, test_per_class: int, val_per_class: int, seed: int) -> Split:
    """Per class, one seeded permutation: the first `test_per_class` images go to test, the next
    `val_per_class` to validation, the rest to train. Test does not depend on `val_per_class`, so
    a validation split leaves the test images of older runs unchanged."""
    if test_per_class < 1 or val_per_class < 0:
        raise UserError(f"test_per_class must be >= 1 and val_per_class >= 0, got {test_per_class} and {val_per_class}")
    generator = torch.Generator().manual_seed(seed)
    parts: dict[str, list[torch.Tensor]] = {"train": [], "val": [], "test": []}
    for label, name in enumerate(images.class_names):
        members = torch.nonzero(images.labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        if val_per_class:
            if len(members) < test_per_class + val_per_class + 1:
                raise UserError(f"class {name!r} of {images.name} has {len(members)} image(s): fewer than "
                                f"test_per_class + val_per_class + 1 = {test_per_class + val_per_class + 1}; "
                                "lower them or add images")
            n_test = test_per_class
        else:  # the split of models trained before validation existed
            n_test = min(test_per_class, len(members) // 2)
        parts["test"].append(members[:n_test])
        parts["val"].append(members[n_test:n_test + val_per_class])
        parts["train"].append(members[n_test + val_per_class:])
    return Split(**{name: images.subset(torch.cat(index).sort().values) for name, index in parts.items()})

def hashed_position(seed: int, image_id: str) -> float:
    """Where an image falls in [0, 1): the first 8 bytes of sha256(seed, id). Depends on nothing else, so no other
    image, and no image added or removed, can change it."""
    digest = hashlib.sha256(f"{seed}\n{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64

def hashed_split(images: ImageSource, test_fraction: float, val_fraction: float, seed: int) -> Split:
    """Each image by its hashed position: below `test_fraction` to test, below `test_fraction + val_fraction` to
    validation, the rest to train. Test does not depend on `val_fraction`. Every class needs an image in each part
    it is given a share of (and one to train on)."""
    position = torch.tensor([hashed_position(seed, image_id) for image_id in images.ids], dtype=torch.float64)
    in_test = position < test_fraction
    in_val = ~in_test & (position < test_fraction + val_fraction)
    in_train = ~in_test & ~in_val
    for label, name in enumerate(images.class_names):
        members = images.labels == label
        empty = [part for part, mask, share in (("test", in_test, test_fraction), ("validation", in_val, val_fraction),
                                                ("train", in_train, 1.0)) if share > 0 and not (mask & members).any()]
        if empty:
            raise UserError(f"class {name!r} of {images.name} has {int(members.sum())} image(s) and none falls to "
                            f"{' or '.join(empty)} with test_fraction {test_fraction} and val_fraction {val_fraction}"
                            f" (split seed {seed}); add images or change the fractions")
    return Split(**{name: images.subset(torch.nonzero(mask).flatten())
                    for name, mask in (("train", in_train), ("val", in_val), ("test", in_test))})

def split_by_config(images: ImageSource, config: DataConfig) -> Split:
    """`images` split by the config's rule: the recorded permutation unless `split: hashed` is asked for."""
    if config.split == "hashed":
        return hashed_split(images, config.test_fraction, config.val_fraction, config.split_seed)
    return split_dataset(images, config.test_per_class, config.val_per_class, config.split_seed)

def load_split(config: DataConfig) -> Split:
    """The dataset of a config held in memory, split into train / validation / test by its rule and seed."""
    return split_by_config(load_dataset(config), config)

def open_split(config: DataConfig) -> Split:
    """The same split as load_split (the same ids in each part), with an image folder's parts read from disk."""
    return split_by_config(open_dataset(config), config)

def sample_subset(images: ImageSource, size: int | None, seed: int) -> ImageSource:
    """A seeded sample of `size` images (in their order); all of them if size is None or not smaller."""
    if size is None or size >= len(images):
        return images
    generator = torch.Generator().manual_seed(seed)
    return images.subset(torch.randperm(len(images), generator=generator)[:size].sort().values)
