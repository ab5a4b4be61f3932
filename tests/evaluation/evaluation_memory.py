"""Peak memory of one `evaluate` over N procedural images, printed as JSON (run by test_evaluation_memory.py in a
fresh process per N, so one measurement cannot hide in another's peak):

    python tests/evaluation/evaluation_memory.py N [--in-memory] [--interval-images C] [--features D]
                                                   [--bootstrap B]

The images are made on request (a set that holds no pixels) unless --in-memory, which holds them before the
measurement starts (for an `evaluate` that can only read `.images`). --interval-images: evaluate's cap on the
per-image feature rows of a set (default: evaluate's; 0: none); --features: the evaluator's feature width (wide
features make the rows a set keeps weigh more than its images); --bootstrap: evaluate's resamples. The JSON also
gives `row_bytes`, the bytes of the per-image feature rows one image adds when every row is kept. The growth is the peak resident memory during
the evaluation above the resident memory just before it (Linux: /proc/self/status, its peak reset through
/proc/self/clear_refs)."""
import argparse
import json
import re
import tempfile

import torch

from i2i_unlearn.config import TaskConfig
from i2i_unlearn.data import ImageSource, UnlearnSplit
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.evaluation.evaluate import evaluate
from i2i_unlearn.evaluation.evaluator import Evaluator, EvaluatorNet
from i2i_unlearn.evaluation.scoring import INTERVAL_IMAGES
from i2i_unlearn.models import build_model

SIZE, CHANNELS = 32, 3
IMAGE_BYTES = SIZE * SIZE * CHANNELS * 4     # one float32 image
CLASSES = ["a", "b", "c", "d"]
MODELS = ("original", "unlearned")
TSNE_POINTS = 20   # outputs per set the T-SNE map draws: a bounded sample, small so that every size measured fills it


def row_bytes(features: int) -> int:
    """The float32 feature rows evaluate keeps per image when it keeps every row: per model its outputs' features
    and logits, whole and hidden region, and its outputs for noise inputs; the same but noise for the ground truth
    and the mean-image fill."""
    logits = len(CLASSES) + 1
    return 4 * (len(MODELS) * (3 * features + 2 * logits) + 2 * (2 * features + 2 * logits))


class Patterns(ImageSource):
    """`n` smooth coloured patterns of class `label` (or of the classes in turn), each made when loaded."""
    image_shape = (CHANNELS, SIZE, SIZE)

    def __init__(self, n: int, labels: torch.Tensor, first: int):
        self.labels, self.class_names, self.name = labels, CLASSES, "patterns"
        self.ids = [f"patterns/{first + i}" for i in range(n)]
        self.first = first

    def load(self, index) -> torch.Tensor:
        seeds = (torch.as_tensor(index, dtype=torch.long).reshape(-1) + self.first).float().view(-1, 1, 1, 1)
        ramp = torch.linspace(0, 6, SIZE)
        return 0.5 + 0.5 * torch.sin(0.37 * seeds + torch.arange(CHANNELS).view(1, -1, 1, 1)
                                     + ramp.view(1, 1, -1, 1) * (1 + seeds % 3) + ramp.view(1, 1, 1, -1))


def split_of(n: int, in_memory: bool) -> UnlearnSplit:
    """A forget class of n/4 images and three retain classes of the rest."""
    forget = Patterns(n // 4, torch.zeros(n // 4, dtype=torch.long), 0)
    retain = Patterns(n - n // 4, 1 + torch.arange(n - n // 4) % 3, n // 4)
    if in_memory:
        forget, retain = forget.materialize(), retain.materialize()
    return UnlearnSplit(forget, retain, forget, retain, ["a"])


def kilobytes(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(re.search(rf"{field}:\s+(\d+)", status.read()).group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("count", type=int)
    parser.add_argument("--in-memory", action="store_true")
    parser.add_argument("--interval-images", type=int, default=INTERVAL_IMAGES)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    count, in_memory, cap = args.count, args.in_memory, args.interval_images or None
    torch.set_num_threads(1)
    # the bootstrap gathers its resamples in chunks of at most this many bytes (a bound, not a growth): kept small
    # here, so what remains is what grows with the number of images
    metrics.BOOTSTRAP_MEMORY = 4 * 2 ** 20
    torch.manual_seed(0)
    model = build_model({"family": "mae", "image_size": SIZE, "channels": CHANNELS, "patch_size": 8,
                         "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
                         "decoder_hidden_size": 32, "decoder_num_layers": 1, "decoder_num_heads": 2,
                         "decoder_intermediate_size": 64}).eval()
    # a narrow network, and the hidden region (16 px, the centre hole) scored at its own size: the evaluator's time
    # is most of the measurement's
    evaluator = Evaluator(EvaluatorNet(CHANNELS, len(CLASSES) + 1, feature_dim=args.features, width=4),
                          {"class_names": [*CLASSES, "no object"], "weights_sha256": "", "image_size": SIZE // 2})
    models, task, mean_image = dict.fromkeys(MODELS, model), TaskConfig("center-inpaint", 0.5), \
        torch.full((1, CHANNELS, SIZE, SIZE), 0.5)
    with tempfile.TemporaryDirectory() as folder:
        # a first small evaluation imports and allocates what every evaluation needs once (T-SNE, plots)
        options = {"mean_image": mean_image, "bootstrap": args.bootstrap, "interval_images": cap,
                   "tsne_points": TSNE_POINTS}
        evaluate(models, split_of(16, in_memory), task, evaluator, f"{folder}/warm", **options)
        split = split_of(count, in_memory)
        before = kilobytes("VmRSS")
        with open("/proc/self/clear_refs", "w") as refs:   # the peak (VmHWM) starts again from here
            refs.write("5")
        results = evaluate(models, split, task, evaluator, f"{folder}/run", **options)
        peak = kilobytes("VmHWM")
    print(json.dumps({"images": count, "growth_bytes": (peak - before) * 1024, "image_bytes": IMAGE_BYTES,
                      "row_bytes": row_bytes(args.features),
                      "interval_images": {name: info["interval_images"] for name, info in results["sets"].items()}}))


if __name__ == "__main__":
    main()
