"""Datasets with class names, held in memory as float tensors in [0, 1], shape (N, C, H, W).

Every dataset becomes an `ImageSet`: images, integer labels, class names and a stable id per
image (the id is what a forget file list names, and what the input hashes cover).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from i2i_unlearn.config import DataConfig
from i2i_unlearn.errors import UserError

ANIMAL_MNIST_CLASSES = ["Bear", "Bird", "Cat", "Cow", "Dog", "Elephant", "Giraffe", "Horse", "Sheep", "Zebra"]
FASHION_MNIST_CLASSES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle-boot"]
FASHION_MNIST_DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"   # where Debian's dataset-fashion-mnist installs (dpkg -L)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass
class ImageSet:
    images: torch.Tensor        # (N, C, H, W) float32 in [0, 1]
    labels: torch.Tensor        # (N,) int64 indices into class_names
    class_names: list[str]
    ids: list[str]              # stable per-image id: "<dataset>/<index>" or a relative file path
    name: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> "ImageSet":
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageSet(self.images[index], self.labels[index], self.class_names,
                        [self.ids[i] for i in index.tolist()], self.name)

    def evenly(self, count: int) -> "ImageSet":
        """`count` images spread evenly over the set (sorted by class: every class is represented); all if fewer."""
        return self.subset(torch.linspace(0, len(self) - 1, min(count, len(self))).round().long())

    def class_indices(self, names: list[str]) -> list[int]:
        """Indices of class names; an unknown name is an error that lists the known ones."""
        lookup = {n.lower(): i for i, n in enumerate(self.class_names)}
        unknown = [n for n in names if n.lower() not in lookup]
        if unknown:
            raise UserError(f"unknown class name(s) {', '.join(unknown)} in {self.name}; "
                            f"known: {', '.join(self.class_names)}")
        return [lookup[n.lower()] for n in names]

    def content_hash(self) -> str:
        """sha256 of the pixels, labels and ids: recorded so a result names exactly its data."""
        digest = hashlib.sha256()
        digest.update((self.images * 255).round().to(torch.uint8).numpy().tobytes())
        digest.update(self.labels.numpy().tobytes())
        digest.update("\n".join(self.ids).encode())
        return digest.hexdigest()


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


def _convert_image(image: Image.Image, mode: str) -> Image.Image:
    """`image` in mode L or RGB, whatever mode it was stored in."""
    if image.mode.startswith("I;16"):   # 16-bit grey: scale to 8 bits (PIL's convert clips everything above 255)
        image = Image.fromarray((np.asarray(image, dtype=np.float32) / 257).round().astype(np.uint8), "L")
    try:
        return image.convert(mode)
    except ValueError:   # modes PIL cannot convert straight to L (LAB) go through RGB
        return image.convert("RGB").convert(mode)


def load_image_folder(config: DataConfig) -> ImageSet:
    """Any folder with one sub-folder per class; images are converted and resized to the config."""
    if not config.root:
        raise UserError("the image-folder dataset needs data.root (or --data-root)")
    root = Path(config.root)
    if not root.is_dir():
        raise UserError(f"image folder not found: {root}")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir())
    mode = "RGB" if config.channels == 3 else "L"
    images, labels, ids, class_names = [], [], [], []
    for class_dir in class_dirs:
        # a folder named like an image is no image (rglob lists its files anyway); a broken symlink stays and is named
        files = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())
        if not files:
            continue
        class_names.append(class_dir.name)
        for path in files:
            try:   # ids are text (forget lists, hashes, results.json): a name that is not UTF-8 cannot be one
                str(path.relative_to(root)).encode()
            except UnicodeEncodeError:
                raise UserError(f"file name is not valid UTF-8: {os.fsencode(path).decode(errors='replace')}; "
                                "rename it") from None
            try:
                with Image.open(path) as image:
                    image = _convert_image(image, mode).resize((config.image_size, config.image_size), Image.BICUBIC)
            except Image.DecompressionBombError:
                raise UserError(f"refusing image {path}: more pixels than PIL's decompression-bomb limit "
                                f"({Image.MAX_IMAGE_PIXELS}); shrink or remove it") from None
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                reason = " ".join(str(exc).split())[:200]
                raise UserError(f"cannot read image {path}: {exc.__class__.__name__}"
                                f"{': ' + reason if reason else ''}") from None
            array = np.asarray(image, dtype=np.float32) / 255.0
            images.append(torch.from_numpy(array).reshape(config.image_size, config.image_size, -1).permute(2, 0, 1))
            labels.append(len(class_names) - 1)
            ids.append(str(path.relative_to(root)))
    if not images:
        raise UserError(f"no images found in {root} (expected one sub-folder per class holding "
                        f"{', '.join(sorted(IMAGE_SUFFIXES))} files)")
    return ImageSet(torch.stack(images), torch.tensor(labels), class_names, ids, f"folder:{root.name}")


DATASETS = {
    "animal-mnist": load_animal_mnist,
    "fashion-mnist": load_fashion_mnist,
    "image-folder": load_image_folder,
}


def load_dataset(config: DataConfig) -> ImageSet:
    if config.dataset not in DATASETS:
        raise UserError(f"unknown dataset {config.dataset!r}; available: {', '.join(DATASETS)}")
    if config.channels not in (1, 3):
        raise UserError(f"data.channels must be 1 or 3, got {config.channels}")
    return DATASETS[config.dataset](config)


def select_classes(images: ImageSet, classes: list[str] | None) -> ImageSet:
    """The images of `classes` (all of them when None or empty)."""
    if not classes:
        return images
    keep = torch.isin(images.labels, torch.tensor(images.class_indices(classes)))
    return images.subset(torch.nonzero(keep).flatten())
