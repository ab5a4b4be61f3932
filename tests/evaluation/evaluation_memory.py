"""Peak memory of one `evaluate` over N procedural images, printed as JSON (run by test_evaluation_memory.py in a
fresh process per N, so one measurement cannot hide in another's peak):

    python tests/evaluation/evaluation_memory.py N [--in-memory]

The images are made on request (a set that holds no pixels) unless --in-memory, which holds them before the
measurement starts (for an `evaluate` that can only read `.images`). The growth is the peak resident memory during
the evaluation above the resident memory just before it (Linux: /proc/self/status, its peak reset through
/proc/self/clear_refs)."""
import json
import re
import sys
import tempfile

import torch

from i2i_unlearn.config import TaskConfig
from i2i_unlearn.data import ImageSource, UnlearnSplit
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.evaluation.evaluate import evaluate
from i2i_unlearn.evaluation.evaluator import Evaluator, EvaluatorNet
from i2i_unlearn.models import build_model

SIZE, CHANNELS = 64, 3
IMAGE_BYTES = SIZE * SIZE * CHANNELS * 4     # one float32 image
CLASSES = ["a", "b", "c", "d"]


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
    count, in_memory = int(sys.argv[1]), "--in-memory" in sys.argv
    torch.set_num_threads(1)
    # the bootstrap gathers its resamples in chunks of at most this many bytes (a bound, not a growth): kept small
    # here, so what remains is what grows with the number of images
    metrics.BOOTSTRAP_MEMORY = 4 * 2 ** 20
    torch.manual_seed(0)
    model = build_model({"family": "mae", "image_size": SIZE, "channels": CHANNELS, "patch_size": 8,
                         "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
                         "decoder_hidden_size": 32, "decoder_num_layers": 1, "decoder_num_heads": 2,
                         "decoder_intermediate_size": 64}).eval()
    evaluator = Evaluator(EvaluatorNet(CHANNELS, len(CLASSES) + 1, feature_dim=16, width=8),
                          {"class_names": [*CLASSES, "no object"], "weights_sha256": "", "image_size": SIZE})
    models, task, mean_image = {"original": model, "unlearned": model}, TaskConfig("center-inpaint", 0.5), \
        torch.full((1, CHANNELS, SIZE, SIZE), 0.5)
    with tempfile.TemporaryDirectory() as folder:
        # a first small evaluation imports and allocates what every evaluation needs once (T-SNE, plots)
        evaluate(models, split_of(16, in_memory), task, evaluator, f"{folder}/warm", mean_image=mean_image)
        split = split_of(count, in_memory)
        before = kilobytes("VmRSS")
        with open("/proc/self/clear_refs", "w") as refs:   # the peak (VmHWM) starts again from here
            refs.write("5")
        evaluate(models, split, task, evaluator, f"{folder}/run", mean_image=mean_image)
        peak = kilobytes("VmHWM")
    print(json.dumps({"images": count, "growth_bytes": (peak - before) * 1024, "image_bytes": IMAGE_BYTES}))


if __name__ == "__main__":
    main()
