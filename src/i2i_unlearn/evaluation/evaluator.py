"""The domain evaluator: a small CNN classifier trained on the dataset (all classes).

Its penultimate features serve FID, KID, T-SNE and (L2-normalised) the CLIP-style similarity;
its class probabilities serve IS and the forget-class recognition rate.

Instrument check (method.md section 4): a plain classifier called noise-filled holes "Cat"
whatever the animal. So the evaluator has one extra class, "no object", trained on real images
whose hole or border is filled with noise, flat grey or the mean image; and real images whose
hole is filled with a blur of themselves keep their label, so a blurry but right fill is not
"no object". `instrument_check` measures what it says for such fills; the report shows it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from i2i_unlearn.checkpoints import read_config_dir, read_weights_dir, save_weights_dir, write_text_atomic
from i2i_unlearn.config import EvaluatorConfig, TaskConfig, to_dict
from i2i_unlearn.data import ImageSource, open_split
from i2i_unlearn.errors import UserError
from i2i_unlearn.runs import prepare_output_dir, run_record, write_run_record
from i2i_unlearn.tasks import degrade, make_mask, noise_image, pick

NO_OBJECT = "no object"
FILL_TASKS = [TaskConfig("center-inpaint", r) for r in (0.25, 0.5, 0.75)] + \
             [TaskConfig("outpaint", r) for r in (0.25, 0.5, 0.75)]
FILLS = ("noise", "uniform noise", "flat grey", "mean image")


def _block(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class EvaluatorNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, feature_dim: int = 64, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(_block(channels, width), _block(width, width), nn.MaxPool2d(2),
                                  _block(width, 2 * width), _block(2 * width, 2 * width), nn.MaxPool2d(2),
                                  _block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(4 * width, feature_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images * 2 - 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(images)))


class Evaluator:
    """A loaded evaluator: features, embeddings, probabilities, in batches, no gradients."""
    kind = "evaluator"

    def __init__(self, net: EvaluatorNet, info: dict):
        self.net = net.eval()
        self.info = info
        self.class_names: list[str] = info["class_names"]
        self.name = info.get("name", "evaluator")
        self.sha256 = info["weights_sha256"]

    @property
    def has_classes(self) -> bool:
        return True

    @torch.no_grad()
    def _batched(self, fn, images, batch_size=256):
        return torch.cat([fn(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])

    def features(self, images):
        return self._batched(self.net.features, images)

    def embeddings(self, images):
        return F.normalize(self.features(images), dim=1)

    def logits(self, images):
        return self._batched(self.net, images)

    def predict(self, images):
        return self.logits(images).argmax(dim=1)

    def feature_module(self) -> nn.Module:
        """For torchmetrics FID/KID: images in [0, 1] -> penultimate features."""
        return _Apply(self.net.features, self.net.head.in_features)

    def logit_module(self) -> nn.Module:
        return _Apply(self.net, len(self.class_names))

    def describe(self) -> dict:
        return {"name": self.name, "kind": "classifier", "sha256": self.sha256,
                "test_accuracy": self.info.get("test_accuracy"), "class_names": self.class_names}


class _Apply(nn.Module):
    """A function as the frozen `feature` module torchmetrics expects."""

    def __init__(self, fn, num_features: int):
        super().__init__()
        self.fn = fn
        self.num_features = num_features  # spares torchmetrics a probe with a 299x299 RGB image

    @torch.no_grad()
    def forward(self, images):
        return self.fn(images)


def load_evaluator(directory: str | Path) -> Evaluator:
    info = read_config_dir(directory, "evaluator")
    if info.get("kind") != "evaluator":
        raise UserError(f"{directory} is not an evaluator directory (config.json kind={info.get('kind')!r})")
    state = read_weights_dir(directory, info)
    net = EvaluatorNet(info["channels"], len(info["class_names"]), info["feature_dim"], info["width"])
    net.load_state_dict(state)
    return Evaluator(net, info)


def make_fill(images: torch.Tensor, mask: torch.Tensor, fill: str, mean_image: torch.Tensor,
              generator: torch.Generator, moments: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Real images whose hidden region is filled with one of FILLS (`moments`: noise_image's, of a whole set)."""
    if fill == "noise":
        value = noise_image(images, "batch-gaussian", generator, moments)
    elif fill == "uniform noise":
        value = noise_image(images, "uniform", generator)
    elif fill == "flat grey":
        value = 0.2 + 0.6 * torch.rand(len(images), 1, 1, 1, generator=generator)
    elif fill == "mean image":
        value = mean_image
    else:
        raise ValueError(fill)
    return degrade(images, mask, value)


def _no_object_batch(images, mean_image, generator):
    task = pick(FILL_TASKS, generator)
    fill = pick(FILLS, generator)
    mask = make_mask(task, len(images), images.shape[-1], 8, generator)
    return make_fill(images, mask, fill, mean_image, generator)


def _blur_fill(images, generator):
    task = FILL_TASKS[int(torch.randint(3, (1,), generator=generator))]  # holes only
    mask = make_mask(task, len(images), images.shape[-1], 8, generator)
    blurred = F.avg_pool2d(F.pad(images, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    return degrade(images, mask, blurred)


def _shift(images, generator, pixels=2):
    padded = F.pad(images, (pixels,) * 4)
    dx, dy = torch.randint(0, 2 * pixels + 1, (2,), generator=generator).tolist()
    return padded[..., dy:dy + images.shape[-2], dx:dx + images.shape[-1]]


def accuracy_by_class(evaluator: Evaluator, images: ImageSource) -> tuple[float, dict[str, float]]:
    """Read 256 images at a time: the batches `predict` takes, so a set on disk gets the numbers one in memory gets."""
    predicted = torch.cat([evaluator.predict(batch.images) for batch in images.batches(256)]
                          or [torch.zeros(0, dtype=torch.long)])
    per_class = {name: float((predicted[images.labels == i] == i).float().mean())
                 for i, name in enumerate(images.class_names) if (images.labels == i).any()}
    return float((predicted == images.labels).float().mean()), per_class


def instrument_check(evaluator: Evaluator, images: ImageSource, task: TaskConfig, seed: int = 0,
                     batch_size: int = 256) -> dict:
    """What the evaluator says for test images whose hidden region is filled with each of FILLS:
    the share predicted as each class. A trustworthy instrument prefers no real class.
    Read batch by batch, with the random draws a pass over the whole set at once makes (every mask, then each fill's
    noise for every image in turn), so the shares do not depend on the batch size or on what memory holds."""
    generator = torch.Generator().manual_seed(seed)
    sizes = [len(chunk) for chunk in torch.arange(len(images)).split(batch_size)]
    side = images.image_shape[-1]
    masks_state = generator.get_state()
    for size in sizes:   # the masks' draws come first; each batch draws its masks again below
        make_mask(task, size, side, 8, generator)
    moments, mean_image = images.channel_moments(), images.mean_image()
    shares = {}
    for fill in FILLS:
        if fill == "uniform noise":   # noise_image draws a Gaussian for the whole set before the uniform noise
            for size in sizes:
                torch.randn((size, *images.image_shape), generator=generator)
        masks = torch.Generator()
        masks.set_state(masks_state)
        counts = torch.zeros(len(evaluator.class_names), dtype=torch.long)
        for batch in images.batches(batch_size):
            mask = make_mask(task, len(batch.images), side, 8, masks)
            filled = (degrade(batch.images, mask, torch.rand(batch.images.shape, generator=generator))
                      if fill == "uniform noise" else make_fill(batch.images, mask, fill, mean_image, generator, moments))
            counts += torch.bincount(evaluator.predict(filled), minlength=len(counts))
        shares[fill] = {name: round(float(c), 4) for name, c in zip(evaluator.class_names,
                                                                     counts.float() / len(images))}
    return {"task": to_dict(task), "count": len(images), "shares": shares}


def train_evaluator(config: EvaluatorConfig, out_dir: str | Path, overwrite: bool = False) -> Evaluator:
    started = time.time()
    out_dir = prepare_output_dir(out_dir, overwrite=overwrite, resume=False)
    split = open_split(config.data)   # an image folder stays on disk: each step reads its batch
    train, test = split.train, split.test
    class_names = train.class_names + [NO_OBJECT]
    no_object = len(train.class_names)
    torch.manual_seed(config.seed)
    net = EvaluatorNet(config.data.channels, len(class_names), config.feature_dim, config.width)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.steps, pct_start=0.1)
    mean_image = train.mean_image()
    n_fill = int(config.batch_size * config.no_object_fraction)
    log, running = [], 0.0
    net.train()
    for step in tqdm(range(config.steps), desc="train evaluator", dynamic_ncols=True):
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        index = torch.randperm(len(train), generator=generator)[:config.batch_size]
        images, labels = train.load(index).clone(), train.labels[index].clone()
        images[:n_fill] = _no_object_batch(images[:n_fill], mean_image, generator)
        labels[:n_fill] = no_object
        n_blur = int((config.batch_size - n_fill) * config.blur_fill_fraction)
        images[n_fill:n_fill + n_blur] = _blur_fill(images[n_fill:n_fill + n_blur], generator)
        loss = F.cross_entropy(net(_shift(images, generator)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        running += loss.item()
        if (step + 1) % config.log_every == 0:
            log.append({"step": step + 1, "loss": round(running / config.log_every, 5)})
            running = 0.0
    info = {"kind": "evaluator", "name": f"cnn-{config.data.dataset}", "class_names": class_names,
            "channels": config.data.channels, "image_size": config.data.image_size,
            "feature_dim": config.feature_dim, "width": config.width, "training": to_dict(config)}
    evaluator = Evaluator(net.eval(), {**info, "weights_sha256": ""})
    accuracy, per_class = accuracy_by_class(evaluator, test)
    info.update(test_accuracy=round(accuracy, 4), test_accuracy_by_class={k: round(v, 4) for k, v in per_class.items()},
                test_count=len(test))
    save_weights_dir(out_dir, net.state_dict(), info)
    write_text_atomic(Path(out_dir) / "train_log.jsonl", "".join(json.dumps(e) + "\n" for e in log))
    evaluator = load_evaluator(out_dir)
    check = instrument_check(evaluator, test, TaskConfig("center-inpaint", 0.5))
    write_run_record(out_dir, run_record("train-evaluator", to_dict(config),
                                         {"train_images": train.content_hash(), "test_images": test.content_hash(),
                                          "split": split.describe()},
                                         started, test_accuracy=info["test_accuracy"], instrument_check=check))
    return evaluator
