"""Proxy retain sets (docs/proxy.md): what `ours` holds at the teacher's encodings when the real retain images are
not at hand. Every kind is an option of UnlearnConfig, built here once before training:

- a proxy dataset (`proxy`, `proxy_classes`): its training images, as they are;
- transformed toward the model's domain (`proxy_transform`, applied in order): `binarize` turns each image into a
  white-on-black silhouette (what Animal-MNIST images are), `augment` gives each image a random flip, rotation,
  scaling and shift;
- the model's own outputs (`proxy_teacher`): the original (teacher) model completes each input with most of it
  hidden (random patches 3/4 by default), so the proxy lies in the model's output domain; the inputs are the proxy
  dataset's images (after the transforms) or noise images, never a forget image.

No image of the model's own data that the real retain set would leave out (a forget image, an image an earlier
request forgot) and no held-out validation or test image of it enters a proxy, whatever the proxy's source: such
images are dropped by their pixels. A budgeted run measures the retain side on the proxy's own validation images,
built the same way (`part="val"`).
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from i2i_unlearn.config import UnlearnConfig, to_dict
from i2i_unlearn.data.datasets import ImageSet
from i2i_unlearn.data.source import ImageSource
from i2i_unlearn.data.splits import Split, hashed_position, open_split, sample_subset
from i2i_unlearn.distributed import process_state
from i2i_unlearn.errors import UserError
from i2i_unlearn.models.generation import generate_outputs
from i2i_unlearn.tasks import check_task, noise_image

PROXY_TRANSFORMS = {
    "binarize": "each image a white-on-black silhouette: grey level, background (the border's side) to black, "
                "Otsu's threshold, holes inside the shape filled; only the values 0 and 1 remain",
    "augment": "each image once: a random horizontal flip, rotation (up to 20 degrees), scaling (0.8 to 1.2) and "
               "shift (up to 10 % of the side), seeded by the run's seed; bilinear, black outside the image",
}
TEACHER_INPUTS = {"proxy": "the proxy dataset's images (after proxy_transform)",
                  "noise": "noise images (after proxy_transform), no dataset needed"}
TEACHER_NOISE = ("uniform", "standard-gaussian")
TEACHER_BATCH = 64            # inputs per teacher pass (and per progress-bar update)
AUGMENT_ROTATION = 20.0       # degrees, either way
AUGMENT_SCALE = (0.8, 1.2)
AUGMENT_SHIFT = 0.1           # of the image side, either way
# seeds of the proxy's randomness, apart from the loop's (seed, step) generators; val draws differ from train's
SEED_OFFSETS = {"noise": 1_001, "augment": 2_003, "teacher": 3_001, "cap": 4_007}
PART_OFFSET = {"train": 0, "val": 500_009}


@dataclass
class Proxy:
    images: ImageSource       # what stands in for the retain images (in memory, or read from disk as needed)
    info: dict                # what run.json records of it (inputs.proxy)


def uses_proxy(config: UnlearnConfig) -> bool:
    """Whether the retain set is a proxy (a proxy dataset, or the original model's outputs of noise)."""
    return config.proxy is not None or config.proxy_teacher is not None


def _choices(table) -> str:
    return ", ".join(table)


def check_transforms(names: list[str] | None) -> None:
    for name in names or []:
        if name not in PROXY_TRANSFORMS:
            raise UserError(f"unknown proxy transform {name!r}; available: "
                            + "; ".join(f"{key} ({doc})" for key, doc in PROXY_TRANSFORMS.items()))


def check_proxy(config: UnlearnConfig) -> None:
    """Refuse proxy options that cannot be run, before anything is loaded or written."""
    teacher = config.proxy_teacher
    check_transforms(config.proxy_transform)
    if config.proxy_transform is not None and len(set(config.proxy_transform)) != len(config.proxy_transform):
        raise UserError(f"proxy_transform names a transform twice: {config.proxy_transform}")
    if not uses_proxy(config):
        given = [name for name, value in (("proxy_classes", config.proxy_classes),
                                          ("proxy_transform", config.proxy_transform)) if value]
        if given:
            raise UserError(f"{', '.join(given)} only apply to a proxy retain set: name a proxy dataset "
                            "(--proxy-dataset) or a proxy of the model's own outputs (--proxy-teacher)")
        return
    if teacher is None:
        return
    if teacher.inputs not in TEACHER_INPUTS:
        raise UserError(f"unknown proxy_teacher.inputs {teacher.inputs!r}; available: "
                        + "; ".join(f"{key} ({doc})" for key, doc in TEACHER_INPUTS.items()))
    if teacher.inputs == "proxy" and config.proxy is None:
        raise UserError("proxy_teacher.inputs proxy completes the proxy dataset's images, and none is named: give a "
                        "proxy dataset (--proxy-dataset) or use noise inputs (--proxy-teacher noise)")
    if teacher.inputs == "noise" and config.proxy is not None:
        raise UserError(f"proxy_teacher.inputs noise uses no dataset, yet the proxy dataset {config.proxy.dataset} "
                        "is named: drop it, or complete its images (--proxy-teacher proxy)")
    if teacher.inputs == "noise" and config.proxy_classes:
        raise UserError("proxy_classes pick classes of a proxy dataset; noise inputs have none")
    if teacher.noise not in TEACHER_NOISE:
        raise UserError(f"unknown proxy_teacher.noise {teacher.noise!r}; available: {_choices(TEACHER_NOISE)}")
    if teacher.images < 1:
        raise UserError(f"proxy_teacher.images must be >= 1, got {teacher.images}")
    check_task(teacher.task)


# --- the transforms -----------------------------------------------------------------------------------------

def _otsu_threshold(grey: torch.Tensor) -> torch.Tensor:
    """Per image (N, P) in [0, 1]: the grey level that best splits its pixels in two (Otsu), as (N, 1)."""
    levels = (grey * 255).round().long().clamp(0, 255)
    hist = torch.zeros(len(grey), 256, dtype=torch.float64)
    hist.scatter_add_(1, levels, torch.ones(levels.shape, dtype=torch.float64))
    p = hist / hist.sum(1, keepdim=True)
    omega = p.cumsum(1)                                        # share of pixels at or below each level
    mu = (p * torch.arange(256, dtype=torch.float64)).cumsum(1)
    between = (mu[:, -1:] * omega - mu) ** 2 / (omega * (1 - omega)).clamp_min(1e-12)
    return ((between.argmax(1, keepdim=True).float() + 0.5) / 255)   # pixels above it are one side


def _border(mask: torch.Tensor) -> torch.Tensor:
    """The outer ring of pixels of (N, H, W) masks."""
    ring = torch.zeros_like(mask)
    ring[:, 0], ring[:, -1], ring[:, :, 0], ring[:, :, -1] = True, True, True, True
    return ring


def _fill_holes(shape: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool shapes with every background region not connected to the border (4-neighbours) filled."""
    background = ~shape
    reached = background & _border(shape)
    for _ in range(shape.shape[1] * shape.shape[2]):
        grown = reached.clone()
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown[:, :, 1:] |= reached[:, :, :-1]
        grown[:, :, :-1] |= reached[:, :, 1:]
        grown &= background
        if torch.equal(grown, reached):
            break
        reached = grown
    return ~reached


def binarize(images: torch.Tensor) -> torch.Tensor:
    """White-on-black silhouettes of (N, C, H, W) images in [0, 1] (PROXY_TRANSFORMS["binarize"])."""
    out = []
    for chunk in images.split(4096):
        grey = chunk.mean(dim=1)                                            # (n, H, W)
        flat = grey.flatten(1)
        above = grey > _otsu_threshold(flat).view(-1, 1, 1)
        ring = _border(above)
        # the border is the background: if most of it is above the threshold, the object is the dark side
        light_ground = (above & ring).flatten(1).sum(1) * 2 > ring.flatten(1).sum(1)
        shape = torch.where(light_ground.view(-1, 1, 1), ~above, above)
        out.append(_fill_holes(shape).unsqueeze(1).expand_as(chunk).to(chunk.dtype))
    return torch.cat(out) if out else images.clone()


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random flip, rotation, scaling and shift per image (PROXY_TRANSFORMS["augment"])."""
    n = len(images)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(AUGMENT_ROTATION)
    scale = AUGMENT_SCALE[0] + torch.rand(n, generator=generator) * (AUGMENT_SCALE[1] - AUGMENT_SCALE[0])
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * AUGMENT_SHIFT * 2   # normalised coordinates span 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # output pixel -> input pixel: inverse rotation and scaling, the flip on x, then the shift
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp(0, 1)


def apply_transforms(images: ImageSource, names: list[str] | None, seed: int) -> ImageSource:
    """`images` with each named transform applied, in order: at once for a set in memory, as each batch is read for
    a set on disk (TransformedImages)."""
    check_transforms(names)
    if not names:
        return images
    if not isinstance(images, ImageSet):
        return TransformedImages(images, names, seed)
    pixels = images.images
    for name in names:
        if name == "binarize":
            pixels = binarize(pixels)
        elif name == "augment":
            pixels = augment(pixels, torch.Generator().manual_seed(seed + SEED_OFFSETS["augment"]))
    return ImageSet(pixels, images.labels, images.class_names, images.ids, images.name)


class TransformedImages(ImageSource):
    """A proxy set on disk with its transforms applied as its images are read, so it is never held whole. binarize
    is per image, as on a set in memory; augment draws each image's flip, rotation, scaling and shift from a
    generator of its own, seeded by the run's seed and the image's id, so the draw does not depend on the batch
    that reads it (a set in memory draws them all from one generator instead)."""

    def __init__(self, source: ImageSource, names: list[str], seed: int):
        self.source, self.names, self.seed = source, list(names), seed
        self.labels, self.class_names, self.ids, self.name = source.labels, source.class_names, source.ids, source.name

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.source.image_shape

    def subset(self, index) -> "TransformedImages":
        return TransformedImages(self.source.subset(index), self.names, self.seed)

    def load(self, index) -> torch.Tensor:
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        pixels = self.source.load(index)
        for name in self.names:
            if name == "binarize":
                pixels = binarize(pixels)
            elif name == "augment" and len(pixels):
                pixels = torch.cat([augment(image[None], self._generator(self.ids[i]))
                                    for image, i in zip(pixels, index.tolist())])
        return pixels

    def _generator(self, image_id: str) -> torch.Generator:
        return torch.Generator().manual_seed(int(hashed_position(self.seed + SEED_OFFSETS["augment"], image_id)
                                                 * 2 ** 62))

    def content_hash(self) -> str:
        """The source's hash (its files), the transforms and the seed: what the pixels are a pure function of."""
        return hashlib.sha256(f"{self.source.content_hash()}\n{'+'.join(self.names)}\n{self.seed}".encode()).hexdigest()


# --- keeping the model's own data out -------------------------------------------------------------------------

def pixel_keys(images: torch.Tensor) -> list[bytes]:
    """A digest of each image's pixels (8-bit): equal images, equal keys."""
    raw = (images * 255).round().clamp(0, 255).to(torch.uint8).flatten(1).numpy()
    return [hashlib.sha1(row.tobytes()).digest() for row in raw]


def drop_images(images: ImageSource, banned: ImageSource) -> tuple[ImageSource, int]:
    """`images` without any whose pixels equal a banned image's, and how many were dropped. Both are read in
    batches (either may be of any size)."""
    if len(banned) == 0 or len(images) == 0 or tuple(banned.image_shape) != tuple(images.image_shape):
        return images, 0
    refused = {key for batch in banned.batches(256) for key in pixel_keys(batch.images)}
    keep = [i for i, key in enumerate(key for batch in images.batches(256) for key in pixel_keys(batch.images))
            if key not in refused]
    if len(keep) == len(images):
        return images, 0
    return images.subset(keep), len(images) - len(keep)


# --- the teacher's outputs ------------------------------------------------------------------------------------

@torch.no_grad()
def teacher_outputs(teacher, images: torch.Tensor, task, seed: int, batch_size: int = TEACHER_BATCH,
                    description: str = "proxy: the original's outputs") -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs, masks): the teacher's completions of `images` under `task`, a batch at a time with a progress
    bar. Batch b's masks and sampling noise come from generate_outputs with seed `seed + b` (the evaluation's
    generation, so every family works); visible pixels are the inputs' own."""
    from tqdm.auto import tqdm

    outputs, masks = [], []
    with tqdm(total=len(images), desc=description, unit="image", dynamic_ncols=True,
              disable=not process_state().is_main_process) as bar:
        for number, start in enumerate(range(0, len(images), batch_size)):
            chunk = images[start:start + batch_size]
            output, mask = generate_outputs(teacher, chunk, task, seed + number, batch_size=len(chunk))
            outputs.append(output)
            masks.append(mask)
            bar.update(len(chunk))
    if not outputs:
        return images.clone(), torch.zeros(len(images), 1, *images.shape[2:])
    return torch.cat(outputs), torch.cat(masks)


# --- building a proxy -----------------------------------------------------------------------------------------

def _noise_inputs(config: UnlearnConfig, count: int, shape: tuple, part: str) -> ImageSet:
    generator = torch.Generator().manual_seed(config.seed + SEED_OFFSETS["noise"] + PART_OFFSET[part])
    pixels = noise_image(torch.zeros(count, *shape), config.proxy_teacher.noise, generator)
    if config.proxy_teacher.noise == "standard-gaussian":
        pixels = pixels.clamp(0, 1)   # model inputs are images in [0, 1]
    return ImageSet(pixels, torch.zeros(count, dtype=torch.long), ["noise"], [f"noise/{i:05d}" for i in range(count)],
                    f"noise ({config.proxy_teacher.noise})")


def describe_source(config: UnlearnConfig, part: str = "train") -> str:
    """In words: what the proxy is, e.g. 'the original's outputs of val of the proxy fashion-mnist, binarize'."""
    teacher = config.proxy_teacher
    if teacher is not None and teacher.inputs == "noise":
        source = f"{part} noise ({teacher.noise})"
    else:
        source = f"{part} of the proxy {config.proxy.dataset}"
    if config.proxy_transform:
        source += f", {'+'.join(config.proxy_transform)}"
    if teacher is not None:
        source = (f"the original's outputs ({teacher.task.name} {teacher.task.ratio:g} hidden) of {source}")
    return source


def build_proxy(config: UnlearnConfig, part: str, shape: tuple, banned: ImageSource, teacher=None,
                size: int | None = None, count: int | None = None, proxy_split: Split | None = None) -> Proxy:
    """The proxy of `config` from `part` (train: what unlearning trains on; val: what a budget measures) for a
    model whose images are `shape` (C, H, W). `banned`: images of the model's data that must not enter (dropped by
    their pixels). `size`: the retain-set size asked for (retain_size / retain_ratio), a seeded sample of the
    inputs drawn before they are transformed or completed (as splits.py samples a real retain set); `count`: at
    most this many, spread evenly over the classes (the budget's sample). `proxy_split`: the proxy dataset's split,
    if already loaded."""
    started = time.perf_counter()
    check_proxy(config)
    teacher_config = config.proxy_teacher
    shape = tuple(shape)
    excluded = 0
    if teacher_config is not None and teacher_config.inputs == "noise":
        inputs = _noise_inputs(config, min(n for n in (teacher_config.images, size, count) if n is not None),
                               shape, part)
    else:
        inputs = (proxy_split or open_split(config.proxy)).part(part)   # an image folder stays on disk
        if config.proxy_classes:
            keep = torch.isin(inputs.labels, torch.tensor(inputs.class_indices(config.proxy_classes)))
            inputs = inputs.subset(torch.nonzero(keep).flatten())
        if tuple(inputs.image_shape) != shape:
            raise UserError(f"the proxy set's images are {tuple(inputs.image_shape)}, the model's {shape}: "
                            "set proxy.image_size and proxy.channels to match")
        inputs, excluded = drop_images(inputs, banned)
        inputs = sample_subset(inputs, size, config.seed)
        if count is not None:
            inputs = inputs.evenly(count)
        if teacher_config is not None and len(inputs) > teacher_config.images:   # a seeded sample of the inputs
            inputs = (sample_subset(inputs, teacher_config.images, config.seed + SEED_OFFSETS["cap"])
                      if count is None else inputs.evenly(teacher_config.images))
    if len(inputs) == 0:
        raise UserError(f"the proxy retain set ({describe_source(config, part)}) is empty"
                        + (f": all {excluded} candidate images are images of the model's own data it may not use"
                           if excluded else ""))
    images = apply_transforms(inputs, config.proxy_transform, config.seed + PART_OFFSET[part])
    info = {"kind": "teacher-outputs" if teacher_config is not None else "images",
            "source": describe_source(config, part), "count": len(images),
            "excluded_own_images": excluded, "transform": list(config.proxy_transform or [])}
    if teacher_config is not None:
        if teacher is None:
            raise UserError("a proxy of the model's own outputs (proxy_teacher) needs the model: build it through "
                            "unlearn()")
        seed = config.seed + SEED_OFFSETS["teacher"] + PART_OFFSET[part]
        teacher_started = time.perf_counter()
        images = images.materialize()   # at most teacher_config.images inputs
        outputs, _ = teacher_outputs(teacher, images.images, teacher_config.task, seed,
                                     description=f"proxy ({part}): the original's outputs")
        images = ImageSet(outputs, images.labels, images.class_names, [f"teacher:{i}" for i in images.ids],
                          f"the original's outputs of {images.name}")
        info["teacher"] = {**to_dict(teacher_config), "seed": seed,
                           "seconds": round(time.perf_counter() - teacher_started, 2)}
    info["pixels_sha256"] = images.content_hash()
    info["seconds"] = round(time.perf_counter() - started, 2)
    return Proxy(images, info)
