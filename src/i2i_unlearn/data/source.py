"""The reading interface every image set shares, whether its pixels are in memory (`ImageSet`, here) or on disk
(`FolderImages`, folder.py): ids, labels and class names are held (cheap); pixels come by index (`load`) or in
batches (`batches`, through a torch DataLoader with optional workers). Code that reads images through this
interface works on a set of any size; `.images` (the whole tensor) exists on the in-memory set only."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset

from i2i_unlearn.errors import UserError


class ImageBatch(NamedTuple):
    images: torch.Tensor   # (B, C, H, W) float32 in [0, 1]
    labels: torch.Tensor   # (B,) int64
    index: torch.Tensor    # (B,) positions of these images in the set they came from


class ImageSource:
    """What every image set offers. Subclasses hold `labels` (N,), `class_names`, `ids` (N) and `name`, and
    define `load`, `subset` and `image_shape`."""
    labels: torch.Tensor        # (N,) int64 indices into class_names
    class_names: list[str]
    ids: list[str]              # stable per-image id: "<dataset>/<index>" or a file path relative to the folder
    name: str

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, index) -> torch.Tensor:
        """The images at positions `index`, (len(index), C, H, W) float32 in [0, 1]."""
        raise NotImplementedError

    def subset(self, index) -> "ImageSource":
        raise NotImplementedError

    @property
    def image_shape(self) -> tuple[int, int, int]:
        raise NotImplementedError

    def evenly(self, count: int) -> "ImageSource":
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

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0, num_workers: int = 0,
                drop_last: bool = False) -> Iterator[ImageBatch]:
        """The set in batches, read by a DataLoader with `num_workers` worker processes. The order is fixed in this
        process (by `seed` when shuffled) and each worker reads whole batches, so the batches are bit-identical with
        any number of workers; at most a few batches are in memory at once."""
        if batch_size < 1:
            raise UserError(f"batch size must be >= 1, got {batch_size}")
        order = (torch.randperm(len(self), generator=torch.Generator().manual_seed(seed)) if shuffle
                 else torch.arange(len(self)))
        chunks = list(order.split(batch_size))
        if drop_last and chunks and len(chunks[-1]) < batch_size:
            chunks.pop()
        # batch_size=None: each item of _BatchReads is already a batch (no collation, one `load` call per batch)
        for batch in DataLoader(_BatchReads(self, chunks), batch_size=None, num_workers=num_workers):
            if isinstance(batch, _ReadFailure):   # raised here, so a worker's error reads like any other
                raise UserError(batch.message)
            yield batch

    def materialize(self) -> "ImageSet":
        """Every image of the set in memory: the one explicit way to ask for that (a small sample's `.images`)."""
        return ImageSet(self.load(torch.arange(len(self))), self.labels, self.class_names, self.ids, self.name)

    def mean_image(self, batch_size: int = 256) -> torch.Tensor:
        """The mean image, (1, C, H, W), summed batch by batch in float64 (no whole set in memory)."""
        total = torch.zeros((1, *self.image_shape), dtype=torch.float64)
        for batch in self.batches(batch_size):
            total += batch.images.sum(dim=0, keepdim=True, dtype=torch.float64)
        return (total / max(len(self), 1)).float()

    def channel_moments(self, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and standard deviation of every pixel of the set, each (1, C, 1, 1), summed batch by
        batch in float64, one channel at a time (a few batch-sized copies at most, whatever the set's size): the
        statistics tasks.noise_image takes from a whole set held at once."""
        total = torch.zeros(self.image_shape[0], dtype=torch.float64)
        squares = torch.zeros_like(total)
        for batch in self.batches(batch_size):
            for channel in range(len(total)):
                pixels = batch.images[:, channel].double()
                total[channel] += pixels.sum()
                squares[channel] += pixels.square().sum()
        count = max(len(self), 1) * self.image_shape[1] * self.image_shape[2]
        mean = total / count
        variance = (squares - count * mean.square()).clamp(min=0) / max(count - 1, 1)
        return mean.float().view(1, -1, 1, 1), variance.sqrt().float().view(1, -1, 1, 1)


def concatenated(first: ImageSource, second: ImageSource) -> ImageSource:
    """Two sets of one dataset as one (first's images, then second's), in memory if both are, else read from each
    as asked (to be read, not sliced: no `subset`)."""
    if isinstance(first, ImageSet) and isinstance(second, ImageSet):
        return ImageSet(torch.cat([first.images, second.images]), torch.cat([first.labels, second.labels]),
                        first.class_names, first.ids + second.ids, first.name)
    return _Concatenated(first, second)


class _Concatenated(ImageSource):
    def __init__(self, first: ImageSource, second: ImageSource):
        self.first, self.second = first, second
        self.labels = torch.cat([first.labels, second.labels])
        self.class_names, self.ids, self.name = first.class_names, first.ids + second.ids, first.name

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.first.image_shape

    def load(self, index) -> torch.Tensor:
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        in_first = index < len(self.first)
        out = torch.empty((len(index), *self.image_shape))
        out[in_first] = self.first.load(index[in_first])
        out[~in_first] = self.second.load(index[~in_first] - len(self.first))
        return out


class NotInMemoryError(RuntimeError):
    """`.images` of a set streamed from disk: it holds no pixels (a programming error, not the user's)."""


class DiskImages(ImageSource):
    """A set read from disk as needed (an image folder, a Hugging Face datasets folder): subclasses hold
    `image_size` and `channels` and define `read` (positions to images, converted and resized)."""
    image_size: int
    channels: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.channels, self.image_size, self.image_size

    @property
    def images(self):
        raise NotInMemoryError(f"{self.name} is read from disk and holds no pixels: read them with load(index) or "
                               f"batches(batch_size); materialize() reads all {len(self)} images into memory")

    def load(self, index) -> torch.Tensor:
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        if len(index) == 0:
            return torch.zeros((0, *self.image_shape))
        return self.read(index.tolist())

    def read(self, positions: list[int]) -> torch.Tensor:
        raise NotImplementedError


class _BatchReads(Dataset):
    """Item i is the i-th batch of positions, loaded: what a DataLoader worker computes."""

    def __init__(self, source: ImageSource, chunks: list[torch.Tensor]):
        self.source, self.chunks = source, chunks

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> "ImageBatch | _ReadFailure":
        index = self.chunks[i]
        try:
            return ImageBatch(self.source.load(index), self.source.labels[index], index)
        except UserError as exc:   # a DataLoader would wrap it in a worker traceback
            return _ReadFailure(str(exc))


class _ReadFailure(NamedTuple):
    message: str


@dataclass
class ImageSet(ImageSource):
    """An image set held in memory: the built-in datasets, samples, proxies, generated sets."""
    images: torch.Tensor        # (N, C, H, W) float32 in [0, 1]
    labels: torch.Tensor        # (N,) int64 indices into class_names
    class_names: list[str]
    ids: list[str]              # stable per-image id: "<dataset>/<index>" or a relative file path
    name: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def load(self, index) -> torch.Tensor:
        return self.images[torch.as_tensor(index, dtype=torch.long)]

    def subset(self, index) -> "ImageSet":
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageSet(self.images[index], self.labels[index], self.class_names,
                        [self.ids[i] for i in index.tolist()], self.name)

    def materialize(self) -> "ImageSet":
        return self

    def mean_image(self, batch_size: int = 256) -> torch.Tensor:
        return self.images.mean(dim=0, keepdim=True)   # in one sum, as every recorded check computed it

    def channel_moments(self, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        # in one sum, as tasks.noise_image computes them: every recorded noise image used these
        return self.images.mean(dim=(0, 2, 3), keepdim=True), self.images.std(dim=(0, 2, 3), keepdim=True)

    def content_hash(self) -> str:
        """sha256 of the pixels, labels and ids: recorded so a result names exactly its data."""
        digest = hashlib.sha256()
        digest.update((self.images * 255).round().to(torch.uint8).numpy().tobytes())
        digest.update(self.labels.numpy().tobytes())
        digest.update("\n".join(self.ids).encode())
        return digest.hexdigest()
