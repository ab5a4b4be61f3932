"""The machine a run ran on and how fast it was at that moment: recorded beside every cost, so wall times
from different machines (or beside another job) can be compared."""
from __future__ import annotations

import functools
import os
import time
from pathlib import Path

MEASURE_SECONDS = 0.3   # how long the matmul throughput is measured, at every run (the tests measure briefly)


def host_speed() -> dict:
    """This machine at this moment: its CPU, the vector instructions torch's kernels use on it and the float32
    matmul throughput torch gets from it (measured for MEASURE_SECONDS). Wall times of cells run on different
    machines, or beside another job, differ by this factor (1500 steps of the MAE's ours: 182-192 s on one session's
    machine, 306 s on another's); and the same seed gives the same weights only on the same kind of CPU (kernels
    round differently with other vector instructions)."""
    import torch
    a = torch.randn(512, 512, generator=torch.Generator().manual_seed(0))
    torch.mm(a, a)   # warm-up: the first call allocates
    repeats, started = 0, time.perf_counter()
    while time.perf_counter() - started < MEASURE_SECONDS:
        torch.mm(a, a)
        repeats += 1
    seconds = time.perf_counter() - started
    return {"cpu": _cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "matmul_gflops": round(2 * 512 ** 3 * repeats / seconds / 1e9, 1)}

@functools.cache
def _cpu_name() -> str | None:
    """The CPU's model name (Linux), read once per process: host_speed runs at every cell."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)
