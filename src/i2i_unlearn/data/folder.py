"""An image folder (one sub-folder per class) read lazily: listing it holds ids, labels and class names only;
each image is decoded, converted and resized when asked for, so a folder of any size fits in memory."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from i2i_unlearn.config import DataConfig
from i2i_unlearn.data.file_hashes import FileHashes
from i2i_unlearn.data.source import DiskImages
from i2i_unlearn.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}



@dataclass
class FolderImages(DiskImages):
    """An image folder read lazily. `ids` are file paths relative to `root`."""
    root: Path
    labels: torch.Tensor
    class_names: list[str]
    ids: list[str]
    name: str
    image_size: int
    channels: int

    def read(self, positions: list[int]) -> torch.Tensor:
        return torch.stack([read_image(self.root / self.ids[i], self.image_size, self.channels) for i in positions])

    def subset(self, index) -> "FolderImages":
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        return FolderImages(self.root, self.labels[index], self.class_names, [self.ids[i] for i in index.tolist()],
                            self.name, self.image_size, self.channels)

    def content_hash(self, cache: FileHashes | None = None) -> str:
        """sha256 of each image's id, class and file sha256 (the files as stored, not the decoded pixels): each file
        is hashed once and kept in `cache`, so a run never reads every image just to name its data."""
        return (cache or FileHashes(None)).listing_hash(self.root, self.ids,
                                                        [self.class_names[i] for i in self.labels.tolist()])


def open_image_folder(config: DataConfig) -> FolderImages:
    """Any folder with one sub-folder per class, read from disk as needed (converted and resized to the config).
    Opening it lists the files only; empty class folders are no class; ids are paths relative to the folder."""
    if not config.root:
        raise UserError("the image-folder dataset needs data.root (or --data-root)")
    root = Path(config.root)
    if not root.is_dir():
        raise UserError(f"image folder not found: {root}")
    labels, ids, class_names = [], [], []
    for class_dir in sorted(d for d in root.iterdir() if d.is_dir()):
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
            labels.append(len(class_names) - 1)
            ids.append(str(path.relative_to(root)))
    if not ids:
        raise UserError(f"no images found in {root} (expected one sub-folder per class holding "
                        f"{', '.join(sorted(IMAGE_SUFFIXES))} files)")
    return FolderImages(root, torch.tensor(labels), class_names, ids, f"folder:{root.name}", config.image_size,
                        config.channels)


def read_image(path: Path, size: int, channels: int) -> torch.Tensor:
    """One image file as a (channels, size, size) float32 tensor in [0, 1], or one clear error naming the file."""
    try:
        with Image.open(path) as image:
            return image_tensor(image, size, channels)
    except Image.DecompressionBombError:
        raise UserError(f"refusing image {path}: more pixels than PIL's decompression-bomb limit "
                        f"({Image.MAX_IMAGE_PIXELS}); shrink or remove it") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise UserError(f"cannot read image {path}: {exc.__class__.__name__}"
                        f"{': ' + reason if reason else ''}") from None


def image_tensor(image: Image.Image, size: int, channels: int) -> torch.Tensor:
    """A decoded image as a (channels, size, size) float32 tensor in [0, 1]: converted, then resized (bicubic).
    Every reader of stored images (a folder, a Hugging Face dataset) goes through here, so both give the same
    pixels for the same picture."""
    image = _convert_image(image, "RGB" if channels == 3 else "L").resize((size, size), Image.BICUBIC)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).reshape(size, size, -1).permute(2, 0, 1)


def _convert_image(image: Image.Image, mode: str) -> Image.Image:
    """`image` in mode L or RGB, whatever mode it was stored in."""
    if image.mode.startswith("I;16"):   # 16-bit grey: scale to 8 bits (PIL's convert clips everything above 255)
        image = Image.fromarray((np.asarray(image, dtype=np.float32) / 257).round().astype(np.uint8), "L")
    try:
        return image.convert(mode)
    except ValueError:   # modes PIL cannot convert straight to L (LAB) go through RGB
        return image.convert("RGB").convert(mode)
