"""What a cell costs: wall and CPU time, peak memory, the machine's speed."""
from __future__ import annotations

import datetime
import functools
import resource
import time
from pathlib import Path


class Measure:
    """Wall time, CPU time (all threads of the process) and peak resident memory of a block. The peak is the
    block's own where Linux lets a process reset its high-water mark (/proc/self/clear_refs), else the
    process's since it started."""

    def __enter__(self):
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.scope = "cell"
        except OSError:
            self.scope = "process"
        self.started, self.cpu_started = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = time.process_time() - self.cpu_started
        self.peak_rss_mb = _peak_rss_mb()
        return False

    def record(self) -> dict:
        return {"wall_time_s": round(self.seconds, 2), "cpu_time_s": round(self.cpu_seconds, 2),
                "peak_rss_mb": self.peak_rss_mb, "peak_rss_scope": self.scope}

def host_speed() -> dict:
    """This machine at this moment: its CPU, the vector instructions torch's kernels use on it and the float32
    matmul throughput torch gets from it (about 0.3 s). Wall times of cells run on different machines, or
    beside another job, differ by this factor (1500 steps of the MAE's ours: 182-192 s on one session's
    machine, 306 s on another's); and the same seed gives the same weights only on the same kind of CPU (kernels
    round differently with other vector instructions)."""
    import torch
    a = torch.randn(512, 512, generator=torch.Generator().manual_seed(0))
    torch.mm(a, a)   # warm-up: the first call allocates
    repeats, started = 0, time.perf_counter()
    while time.perf_counter() - started < 0.3:
        torch.mm(a, a)
        repeats += 1
    seconds = time.perf_counter() - started
    return {"cpu": _cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
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

def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

def duration_text(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
