"""Datasets with class names. The built-in ones are small and held in memory (`ImageSet`: float tensors in [0, 1],
shape (N, C, H, W)); an image folder and a saved Hugging Face dataset are read from disk as asked (`FolderImages`,
folder.py; `HFDatasetImages`, hf_dataset.py). All have integer labels, class names and a stable id per image (the id
is what a forget file list names, and what the input hashes and the hashed split cover), and share one reading
interface (source.py).
"""
from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from i2i_unlearn.config import DataConfig
from i2i_unlearn.data.folder import open_image_folder
from i2i_unlearn.data.hf_dataset import open_hf_dataset
from i2i_unlearn.data.source import ImageSet, ImageSource
from i2i_unlearn.errors import UserError

ANIMAL_MNIST_CLASSES = ["Bear", "Bird", "Cat", "Cow", "Dog", "Elephant", "Giraffe", "Horse", "Sheep", "Zebra"]
FASHION_MNIST_CLASSES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle-boot"]
FASHION_MNIST_DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"   # where Debian's dataset-fashion-mnist installs (dpkg -L)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Animal-MNIST ships pickled numpy arrays: allow exactly what rebuilds an ndarray, nothing else."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        return super().find_class(module.replace("numpy.core.", "numpy._core."), name)


def _to_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad (centered) a smaller square image to `size`; resize anything else."""
    h = images.shape[-1]
    if h == size:
        return images
    if h < size and (size - h) % 2 == 0:
        pad = (size - h) // 2
        return F.pad(images, (pad, pad, pad, pad))
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _grey_array_set(pixels: np.ndarray, labels: np.ndarray, classes, name, config: DataConfig) -> ImageSet:
    images = torch.from_numpy(pixels.astype(np.float32) / 255.0).unsqueeze(1)
    images = _to_size(images, config.image_size)
    if config.channels == 3:
        images = images.repeat(1, 3, 1, 1)
    ids = [f"{name}/{i:05d}" for i in range(len(labels))]
    return ImageSet(images, torch.from_numpy(labels.astype(np.int64)), list(classes), ids, name)


def deduplicate(pixels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Indices that keep the first of every exact (image, label) duplicate, in original order."""
    keys = [hashlib.sha1(p.tobytes() + bytes([int(l)])).digest() for p, l in zip(pixels, labels)]
    seen, keep = set(), []
    for i, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return np.asarray(keep)


def load_animal_mnist(config: DataConfig) -> ImageSet:
    """Animal-MNIST: 10 animal silhouette classes, 28x28 grey, exact duplicates removed (pip package)."""
    try:
        import animal_mnist  # noqa: F401  (only its data files are used)
    except ImportError:
        raise UserError("the animal-mnist package is not installed: pip install --no-deps animal-mnist==0.4") from None
    folder = Path(animal_mnist.__file__).parent / "data" / "Animal_MNIST"
    with gzip.open(folder / "animal_data_version_3.gz", "rb") as f:
        pixels = _NumpyOnlyUnpickler(f).load()
    with gzip.open(folder / "animal_label_version_3.gz", "rb") as f:
        labels = _NumpyOnlyUnpickler(f).load()
    images = _grey_array_set(pixels, labels, ANIMAL_MNIST_CLASSES, "animal-mnist", config)
    # ids keep the index in the original file, so a forget list stays valid after deduplication
    return images.subset(deduplicate(pixels, labels))


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise UserError(f"{path} is not an IDX file of unsigned bytes")
    ndim = magic & 0xFF
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(config: DataConfig) -> ImageSet:
    """Fashion-MNIST from IDX files (default: Debian's dataset-fashion-mnist), duplicates removed."""
    root = Path(config.root or FASHION_MNIST_DEFAULT_ROOT)
    if not root.is_dir():
        raise UserError(f"Fashion-MNIST folder not found: {root}: install it (make fashion-mnist, or apt-get install "
                        "dataset-fashion-mnist), or name a folder of its IDX files (--proxy-root for a proxy set, "
                        "--data-root for a model's data)")

    def find(stem):
        for candidate in (root / f"{stem}", root / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
        raise UserError(f"no {stem}[.gz] in {root}")

    pixels = np.concatenate([_read_idx(find("train-images-idx3-ubyte")), _read_idx(find("t10k-images-idx3-ubyte"))])
    labels = np.concatenate([_read_idx(find("train-labels-idx1-ubyte")), _read_idx(find("t10k-labels-idx1-ubyte"))])
    images = _grey_array_set(pixels, labels, FASHION_MNIST_CLASSES, "fashion-mnist", config)
    return images.subset(deduplicate(pixels, labels))


DATASETS = {   # name -> opener: the built-in sets come loaded, a folder listed
    "animal-mnist": load_animal_mnist,
    "fashion-mnist": load_fashion_mnist,
    "image-folder": open_image_folder,
    "hf-dataset": open_hf_dataset,
}


def open_dataset(config: DataConfig) -> ImageSource:
    """The dataset of a config, as cheaply as it comes: an image folder listed, not read (a set of any size)."""
    if config.dataset not in DATASETS:
        raise UserError(f"unknown dataset {config.dataset!r}; available: {', '.join(DATASETS)}")
    if config.channels not in (1, 3):
        raise UserError(f"data.channels must be 1 or 3, got {config.channels}")
    return DATASETS[config.dataset](config)


def load_dataset(config: DataConfig) -> ImageSet:
    """The dataset of a config held in memory (an image folder read whole): for code that still slices `.images`."""
    return open_dataset(config).materialize()


def select_classes(images: ImageSource, classes: list[str] | None) -> ImageSource:
    """The images of `classes` (all of them when None or empty)."""
    if not classes:
        return images
    keep = torch.isin(images.labels, torch.tensor(images.class_indices(classes)))
    return images.subset(torch.nonzero(keep).flatten())
