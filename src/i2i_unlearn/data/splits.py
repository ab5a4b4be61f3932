"""Seeded splits of a dataset: held-out test and validation images per class, the rest for training."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from i2i_unlearn.checkpoints import sha256_text
from i2i_unlearn.config import DataConfig
from i2i_unlearn.data.datasets import load_dataset
from i2i_unlearn.data.source import ImageSet
from i2i_unlearn.errors import UserError


@dataclass
class Split:
    """Disjoint train / validation / test parts of a dataset, each a pure function of the split seed."""
    train: ImageSet
    val: ImageSet
    test: ImageSet

    def part(self, name: str) -> ImageSet:
        if name not in SPLIT_PARTS:
            raise UserError(f"unknown split {name!r}; available: {', '.join(SPLIT_PARTS)}")
        return getattr(self, name)

    def describe(self) -> dict:
        """Counts and id hashes of every part: recorded beside every run, so a result names its split."""
        return {name: {"count": len(part), "ids_sha256": sha256_text("\n".join(part.ids))}
                for name, part in (("train", self.train), ("val", self.val), ("test", self.test))}

SPLIT_PARTS = ("train", "val", "test")

def split_dataset(images: ImageSet, test_per_class: int, val_per_class: int, seed: int) -> Split:
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

def load_split(config: DataConfig) -> Split:
    """The dataset of a config, split into train / validation / test by its split seed."""
    return split_dataset(load_dataset(config), config.test_per_class, config.val_per_class, config.split_seed)

def sample_subset(images: ImageSet, size: int | None, seed: int) -> ImageSet:
    """A seeded sample of `size` images (in their order); all of them if size is None or not smaller."""
    if size is None or size >= len(images):
        return images
    generator = torch.Generator().manual_seed(seed)
    return images.subset(torch.randperm(len(images), generator=generator)[:size].sort().values)
