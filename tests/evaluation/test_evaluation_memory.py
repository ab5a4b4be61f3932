"""Issue 34: the memory of `evaluate` does not grow with the number of images it scores: it keeps no images, and of a
set above its cap on per-image rows (`interval_images`) only the rows of a fixed-size sample, plus a few numbers per
image. Measured in fresh processes by evaluation_memory.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow,   # two evaluations of a few hundred images in their own processes
              pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")]

PROBE = Path(__file__).with_name("evaluation_memory.py")


def peak_growth(count: int, *options: str) -> dict:
    # glibc's dynamic mmap threshold keeps freed blocks of a few MB in the heap, where they can stay resident and
    # grow with the number of batches: a fixed threshold returns them, so the peak reads what evaluate holds
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(PROBE), str(count), *options], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# a tiny cap, so a few hundred images cross it (a forget set of 75 at 300); wide features (256), so the rows a set would keep (10 kB an image)
# weigh about as much as its images (32 px RGB, 12 kB); 2 resamples: the intervals' code runs, cheaply
CAPPED = ("--interval-images", "50", "--features", "256", "--bootstrap", "2")


def test_the_memory_of_an_evaluation_does_not_grow_with_its_images():
    """300 against 1,500 images, both sets of both above the cap of 50 rows (and every other bounded sample, batch
    and map filled at 300): the extra 1,200 images cost less than a quarter of one copy of themselves, and less
    than a quarter of the feature rows every image would keep without the cap. Measured: the peak moved by +0.26 MB
    (47.35 and 47.62 MB); with every row kept (--interval-images 0) 1,500 images grew it by a further 25.8 MB,
    21 kB an image, where the limit is 3.1 MB. The evaluation that held its sets (before issue 34) grew by about 8
    copies of the images (382 kB per 64 px image)."""
    small, large = peak_growth(300, *CAPPED), peak_growth(1500, *CAPPED)
    for run in (small, large):
        assert run["interval_images"] == {"forget": 50, "retain": 50}, run   # every set above the cap
    extra_images = large["images"] - small["images"]
    growth = large["growth_bytes"] - small["growth_bytes"]
    assert growth < 0.25 * extra_images * large["image_bytes"], (small, large)
    assert growth < 0.25 * extra_images * large["row_bytes"], (small, large)
