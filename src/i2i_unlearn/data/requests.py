"""The image sets of one unlearning request: forget and retain training images (or a proxy for the retain set),
and held-out forget and retain images of the evaluation split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from i2i_unlearn.checkpoints import sha256_text
from i2i_unlearn.config import DataConfig, UnlearnConfig
from i2i_unlearn.data.proxy import build_proxy, describe_source, uses_proxy
from i2i_unlearn.data.source import ImageSource, concatenated
from i2i_unlearn.data.splits import open_split, sample_subset
from i2i_unlearn.errors import UserError


@dataclass
class UnlearnSplit:
    """The sets of one request, in memory or read from disk as the dataset is (ImageSource: load, batches)."""
    forget_train: ImageSource
    retain_train: ImageSource   # the real retain set or a proxy: what unlearning pulls toward the teacher
    forget_eval: ImageSource    # held-out images of the forget classes, from `eval_split`
    retain_eval: ImageSource
    forget_class_names: list[str]
    eval_split: str = "test"    # test (scores) or val (choosing knobs)
    parts: dict | None = None   # Split.describe() of the dataset: counts and id hashes of train, val, test
    train: ImageSource | None = None  # the whole train part the sets above were drawn from
    # "classes": forget_eval holds never-seen images of the forget classes; "files": a file list
    # has no never-seen twin, so (in `evaluate`) forget_eval holds the forgotten images themselves
    forget_kind: str = "classes"
    proxy: dict | None = None          # with a proxy retain set: what it is (proxy.py's Proxy.info, in run.json)
    proxy_val: ImageSource | None = None  # the proxy's own validation images, built the same way (asked for by a budget)
    proxy_val_source: str | None = None

def _select(images: ImageSource, keep: torch.Tensor) -> ImageSource:
    return images.subset(torch.nonzero(keep).flatten())

def read_id_list(path: str | Path) -> list[str]:
    """The image ids of a forget file list (one per line, UTF-8), or one clear error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"forget file list not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not a text file of image ids (one per line, UTF-8): byte {exc.start} cannot be "
                        "read; is it the right file?") from None
    if "\0" in text:
        raise UserError(f"{path} is not a text file of image ids (one per line): it holds binary data; is it the "
                        "right file?")
    return [line.strip() for line in text.splitlines() if line.strip()]

def make_unlearn_split(data: DataConfig, config: UnlearnConfig, eval_split: str = "test",
                       forgotten_id_hashes: frozenset[str] = frozenset(), teacher=None,
                       proxy_val: bool = False, forgotten_classes: list[str] | None = None) -> UnlearnSplit:
    """Forget and retain sets from the train part; their held-out twins from `eval_split`.
    `forgotten_id_hashes` (sha256 of image ids an earlier request forgot by file list) stay out of
    the retain set, so a later request never trains on them again.
    With a proxy retain set (data/proxy.py) the retain set is the proxy; `teacher` is the original model (a proxy
    of its own outputs needs it), `proxy_val` asks for the proxy's validation images too (a budget's), and no image
    of `forgotten_classes` (classes earlier requests forgot) enters the proxy either."""
    if eval_split == "train":
        raise UserError("evaluate on held-out images: split val or test")
    split = open_split(data)   # an image folder's parts stay on disk: the sets below are read in batches
    train, test = split.train, split.part(eval_split)
    if config.forget_files:
        path = Path(config.forget_files)
        wanted = set(read_id_list(path))
        held_out = set(split.val.ids) | set(split.test.ids)
        missing = wanted - set(train.ids) - held_out
        if missing:
            raise UserError(f"{len(missing)} id(s) of {path} are not in {train.name}, e.g. {sorted(missing)[0]}")
        in_held_out = wanted & held_out
        if in_held_out:
            raise UserError(f"{len(in_held_out)} id(s) of {path} are held-out validation or test images, e.g. "
                            f"{sorted(in_held_out)[0]}; unlearning never sees them")
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

    if forgotten_id_hashes:
        retain_keep = retain_keep & ~torch.tensor([sha256_text(i) in forgotten_id_hashes for i in train.ids])
    forget_train = _select(train, forget_mask)
    retain_train = _select(train, retain_keep)
    proxy_info = proxy_val_images = proxy_val_source = None
    size = retain_sample_size(config, len(forget_train))
    if uses_proxy(config):
        # never in a proxy, whatever its source (dropped by their pixels): the model's images the real retain set
        # leaves out (the forget set, images and classes forgotten earlier) and its held-out ones; never in the
        # proxy's validation images: those, and the held-out images of the forgotten classes
        shape = train.image_shape
        proxy_split = open_split(config.proxy) if config.proxy is not None else None   # opened once
        gone = [] if config.forget_files else list(forget_labels)
        if forgotten_classes:
            lookup = {name.lower(): i for i, name in enumerate(train.class_names)}
            gone += [lookup[name.lower()] for name in forgotten_classes if name.lower() in lookup]
        gone = torch.tensor(sorted(set(gone)), dtype=torch.long)
        left_out = _select(train, ~retain_keep | torch.isin(train.labels, gone))
        never_trained = concatenated(concatenated(left_out, split.val), split.test)
        proxy = build_proxy(config, "train", shape, never_trained, teacher, size=size, proxy_split=proxy_split)
        retain_train, proxy_info = proxy.images, proxy.info
        if proxy_val:
            val_gone, test_gone = (_select(part, torch.isin(part.labels, gone)) for part in (split.val, split.test))
            val = build_proxy(config, "val", shape, concatenated(concatenated(left_out, val_gone), test_gone),
                              teacher, count=config.budget_images, proxy_split=proxy_split)
            proxy_val_images, proxy_val_source = val.images, describe_source(config, "val")
    retain_train = sample_subset(retain_train, size, config.seed)
    if len(retain_train) == 0:
        raise UserError("the retain set is empty")
    return UnlearnSplit(forget_train, retain_train, _select(test, test_forget_mask), _select(test, test_retain_keep),
                        forget_class_names, eval_split, split.describe(), train, proxy=proxy_info,
                        proxy_val=proxy_val_images, proxy_val_source=proxy_val_source)

def retain_sample_size(config: UnlearnConfig, n_forget: int) -> int | None:
    """The retain-set size asked for (retain_size, or retain_ratio per forget image); None: all of it."""
    if config.retain_size is not None and config.retain_ratio is not None:
        raise UserError("give retain_size or retain_ratio, not both")
    size = config.retain_size
    if config.retain_ratio is not None:
        if config.retain_ratio <= 0:
            raise UserError(f"retain_ratio must be > 0, got {config.retain_ratio}")
        size = max(1, round(config.retain_ratio * n_forget))
    return size
