"""What a cell costs: wall and CPU time, peak memory, the machine's speed."""
from __future__ import annotations

import datetime
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
