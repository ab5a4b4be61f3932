"""Seeded splits: held-out test images per class, and the forget / retain / proxy sets."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from i2i_unlearn.config import DataConfig, UnlearnConfig
from i2i_unlearn.data.datasets import ImageSet, load_dataset
from i2i_unlearn.errors import UserError


def train_test_split(images: ImageSet, test_per_class: int, seed: int) -> tuple[ImageSet, ImageSet]:
    """Per class, a seeded random `test_per_class` images go to test, the rest to train."""
    generator = torch.Generator().manual_seed(seed)
    train_index, test_index = [], []
    for label in range(len(images.class_names)):
        members = torch.nonzero(images.labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_test = min(test_per_class, len(members) // 2)
        test_index.append(members[:n_test])
        train_index.append(members[n_test:])
    train_index = torch.cat(train_index).sort().values
    test_index = torch.cat(test_index).sort().values
    return images.subset(train_index), images.subset(test_index)


def load_split(config: DataConfig) -> tuple[ImageSet, ImageSet]:
    """The dataset of a config, split into (train, test) by its split seed."""
    return train_test_split(load_dataset(config), config.test_per_class, config.split_seed)


@dataclass
class UnlearnSplit:
    forget_train: ImageSet
    retain_train: ImageSet      # the real retain set or a proxy: what unlearning pulls toward the teacher
    forget_test: ImageSet
    retain_test: ImageSet
    forget_class_names: list[str]


def _select(images: ImageSet, keep: torch.Tensor) -> ImageSet:
    return images.subset(torch.nonzero(keep).flatten())


def make_unlearn_split(data: DataConfig, config: UnlearnConfig) -> UnlearnSplit:
    train, test = load_split(data)
    if config.forget_files:
        path = Path(config.forget_files)
        if not path.is_file():
            raise UserError(f"forget file list not found: {path}")
        wanted = {line.strip() for line in path.read_text().splitlines() if line.strip()}
        missing = wanted - set(train.ids) - set(test.ids)
        if missing:
            raise UserError(f"{len(missing)} id(s) of {path} are not in {train.name}, e.g. {sorted(missing)[0]}")
        in_test = wanted & set(test.ids)
        if in_test:
            raise UserError(f"{len(in_test)} id(s) of {path} are held-out test images, e.g. {sorted(in_test)[0]}; "
                            "unlearning never sees test images")
        forget_mask = torch.tensor([i in wanted for i in train.ids])
        forget_labels = sorted(set(train.labels[forget_mask].tolist()))
        forget_class_names = [train.class_names[i] for i in forget_labels]
        test_forget_mask = torch.zeros(len(test), dtype=torch.bool)  # file lists have no held-out twin
    else:
        forget_labels = train.class_indices(config.forget_classes)
        forget_class_names = [train.class_names[i] for i in forget_labels]
        forget_mask = torch.isin(train.labels, torch.tensor(forget_labels, dtype=torch.long))
        test_forget_mask = torch.isin(test.labels, torch.tensor(forget_labels, dtype=torch.long))
    if not forget_mask.any():
        raise UserError("the forget set is empty: name forget classes (--forget-classes) or a forget file list")

    if config.retain_classes is not None:
        retain_labels = train.class_indices(config.retain_classes)
        overlap = sorted(set(retain_labels) & set(forget_labels)) if not config.forget_files else []
        if overlap:
            raise UserError(f"class(es) {', '.join(train.class_names[i] for i in overlap)} are both forgotten "
                            "and retained")
        retain_keep = torch.isin(train.labels, torch.tensor(retain_labels, dtype=torch.long)) & ~forget_mask
        test_retain_keep = torch.isin(test.labels, torch.tensor(retain_labels, dtype=torch.long))
    else:
        retain_keep = ~forget_mask if config.forget_files else ~torch.isin(
            train.labels, torch.tensor(forget_labels, dtype=torch.long))
        test_retain_keep = ~test_forget_mask if not config.forget_files else torch.ones(len(test), dtype=torch.bool)

    forget_train = _select(train, forget_mask)
    retain_train = _select(train, retain_keep)
    if config.proxy is not None:
        proxy_train, _ = load_split(config.proxy)
        if config.proxy_classes:
            keep = torch.isin(proxy_train.labels, torch.tensor(proxy_train.class_indices(config.proxy_classes)))
            proxy_train = _select(proxy_train, keep)
        if proxy_train.images.shape[1:] != train.images.shape[1:]:
            raise UserError(f"the proxy set's images are {tuple(proxy_train.images.shape[1:])}, the model's "
                            f"{tuple(train.images.shape[1:])}: set proxy.image_size and proxy.channels to match")
        retain_train = proxy_train
    retain_train = _sample_retain(retain_train, len(forget_train), config)
    if len(retain_train) == 0:
        raise UserError("the retain set is empty")
    return UnlearnSplit(forget_train, retain_train, _select(test, test_forget_mask), _select(test, test_retain_keep),
                        forget_class_names)


def _sample_retain(retain: ImageSet, n_forget: int, config: UnlearnConfig) -> ImageSet:
    if config.retain_size is not None and config.retain_ratio is not None:
        raise UserError("give retain_size or retain_ratio, not both")
    size = config.retain_size
    if config.retain_ratio is not None:
        if config.retain_ratio <= 0:
            raise UserError(f"retain_ratio must be > 0, got {config.retain_ratio}")
        size = max(1, round(config.retain_ratio * n_forget))
    if size is None or size >= len(retain):
        return retain
    generator = torch.Generator().manual_seed(config.seed)
    return retain.subset(torch.randperm(len(retain), generator=generator)[:size].sort().values)
