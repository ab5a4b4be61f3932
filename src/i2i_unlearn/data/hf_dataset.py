"""A Hugging Face `datasets` folder (written by `Dataset.save_to_disk`) read lazily, like an image folder: opening it
reads the label column only (the table is memory-mapped, never loaded); each image is decoded, converted and resized
when asked for, so a dataset of any size fits in memory.

The dataset needs one image column (feature `Image`) and one class column (feature `ClassLabel`, whose names are the
class names). An image's id is its `id` column when the dataset has one, else its row number: either stays the same
when rows are appended, so the hashed split keeps every earlier image in its part.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from i2i_unlearn.checkpoints import sha256_text
from i2i_unlearn.config import DataConfig
from i2i_unlearn.data.file_hashes import FileHashes
from i2i_unlearn.data.folder import image_tensor
from i2i_unlearn.data.source import DiskImages
from i2i_unlearn.errors import UserError

ID_COLUMN = "id"


@dataclass
class HFDatasetImages(DiskImages):
    """Rows `rows` of a saved Hugging Face dataset. `dataset` is memory-mapped: it pickles as its file paths, so
    DataLoader workers open it again instead of copying it."""
    dataset: object            # datasets.Dataset
    image_column: str
    rows: torch.Tensor         # (N,) row positions in `dataset`
    labels: torch.Tensor
    class_names: list[str]
    ids: list[str]
    name: str
    image_size: int
    channels: int

    def read(self, positions: list[int]) -> torch.Tensor:
        rows = self.rows[torch.tensor(positions)].tolist()
        try:
            decoded = self.dataset.select_columns([self.image_column])[rows][self.image_column]
            return torch.stack([image_tensor(image, self.image_size, self.channels) for image in decoded])
        except (OSError, ValueError) as exc:   # PIL's decoding errors (a decompression bomb is a ValueError)
            reason = " ".join(str(exc).split())[:200]
            raise UserError(f"cannot read an image of rows {rows[0]}..{rows[-1]} of {self.name}: "
                            f"{exc.__class__.__name__}: {reason}") from None

    def subset(self, index) -> "HFDatasetImages":
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        return HFDatasetImages(self.dataset, self.image_column, self.rows[index], self.labels[index],
                               self.class_names, [self.ids[i] for i in index.tolist()], self.name, self.image_size,
                               self.channels)

    def content_hash(self, cache: FileHashes | None = None) -> str:
        """sha256 of each image's id and class and of the dataset's arrow files (as stored; each file hashed once
        and kept in `cache`), as an image folder names its data by its files."""
        files = sorted(Path(entry["filename"]) for entry in self.dataset.cache_files)
        cache = cache or FileHashes(None)
        lines = [f"{path.name}\t{cache.sha256(path)}" for path in files]
        lines += [f"{image_id}\t{self.class_names[label]}" for image_id, label in zip(self.ids, self.labels.tolist())]
        cache.save()
        return sha256_text("\n".join(lines))


def _column(features: dict, kind: str, preferred: str, root: Path) -> str:
    """The column whose feature is `kind` (`preferred` first when several are); a clear error when none is."""
    found = [name for name, feature in features.items() if type(feature).__name__ == kind]
    if not found:
        raise UserError(f"{root} has no column of feature {kind} (columns: {', '.join(features)}); the hf-dataset "
                        "reader needs an Image column and a ClassLabel column")
    return preferred if preferred in found else found[0]


def open_hf_dataset(config: DataConfig) -> HFDatasetImages:
    """A Hugging Face dataset folder written by `Dataset.save_to_disk`: an Image column, a ClassLabel column."""
    if not config.root:
        raise UserError("the hf-dataset dataset needs data.root (or --data-root): a folder written by "
                        "Dataset.save_to_disk")
    root = Path(config.root)
    if (root / "dataset_dict.json").is_file():
        splits = sorted(p.name for p in root.iterdir() if (p / "state.json").is_file())
        raise UserError(f"{root} holds a DatasetDict ({', '.join(splits)}): name one of its datasets as the data "
                        f"folder, e.g. {root / (splits[0] if splits else 'train')} (i2i-unlearn makes its own split)")
    if not (root / "state.json").is_file():
        raise UserError(f"not a Hugging Face dataset folder (no state.json, as Dataset.save_to_disk writes): {root}")
    from datasets import load_from_disk   # deferred: importing datasets takes seconds
    dataset = load_from_disk(str(root))
    image_column = _column(dataset.features, "Image", "image", root)
    label_column = _column(dataset.features, "ClassLabel", "label", root)
    labels = np.asarray(dataset.select_columns([label_column]).with_format("numpy")[label_column], dtype=np.int64)
    if len(labels) == 0:
        raise UserError(f"{root} holds no rows")
    if ID_COLUMN in dataset.features:
        ids = [str(value) for value in dataset.select_columns([ID_COLUMN])[ID_COLUMN]]
        if len(set(ids)) != len(ids):
            raise UserError(f"the {ID_COLUMN!r} column of {root} repeats values: every image needs its own id")
    else:
        ids = [str(row) for row in range(len(labels))]
    if labels.min() < 0:   # ClassLabel's "no label" (-1)
        raise UserError(f"{int((labels < 0).sum())} row(s) of {root} have no class (label -1): drop them first")
    # a class without rows is no class (as an empty class folder), so every class can be split
    present = np.unique(labels)
    class_names = [dataset.features[label_column].names[i] for i in present]
    labels = np.searchsorted(present, labels)
    return HFDatasetImages(dataset, image_column, torch.arange(len(labels)), torch.from_numpy(labels), class_names,
                           ids, f"hf:{root.name}", config.image_size, config.channels)
