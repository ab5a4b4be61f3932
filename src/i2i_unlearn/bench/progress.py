"""Progress of a running bench and the estimate of the time left."""
from __future__ import annotations

import time

from i2i_unlearn.bench.measure import duration_text
from i2i_unlearn.bench.plan import Cell, planned_steps


class Progress:
    """Cells done and the time left: pending unlearning steps at each family's measured steps/s, plus
    pending evaluations at each family's measured seconds per evaluation (cached cells count too)."""

    def __init__(self, cells: list[Cell], bench: dict, echo):
        self.cells, self.bench, self.echo = cells, bench, echo
        self.started = time.perf_counter()
        self.rates: dict[str, list] = {}   # family -> [steps, seconds, evaluations, seconds]

    def observe(self, cell: Cell, record: dict) -> None:
        rate = self.rates.setdefault(cell.family, [0, 0.0, 0, 0.0])
        unlearning = (record.get("cost") or {}).get("unlearning")
        # this invocation's steps and seconds (a resumed run's or a started run's total counts others' too)
        seconds = (unlearning or {}).get("wall_time_this_run_s") or (unlearning or {}).get("wall_time_s")
        if unlearning and unlearning.get("steps_this_run") and seconds:
            rate[0] += unlearning["steps_this_run"]
            rate[1] += seconds
        rate[2] += 1
        rate[3] += record["cost"]["evaluation"]["wall_time_s"]

    def left(self, done: set[str], unlearned: set[str]) -> float | None:
        seconds = 0.0
        pending_unlearning, counted = set(), set()
        for cell in self.cells:
            if cell.key in done or cell.key in counted:
                continue
            counted.add(cell.key)
            steps, step_time, evaluations, evaluation_time = self.rates.get(cell.family, [0, 0.0, 0, 0.0])
            if not evaluations:
                return None
            seconds += evaluation_time / evaluations
            if cell.unlearn_key and cell.unlearn_key not in unlearned and cell.unlearn_key not in pending_unlearning:
                pending_unlearning.add(cell.unlearn_key)
                if not steps:
                    return None
                seconds += (planned_steps(cell) or 0) * step_time / steps
        return seconds

    def report(self, cell: Cell | None, done: set[str], unlearned: set[str]) -> None:
        total = len({c.key for c in self.cells})
        left = self.left(done, unlearned)
        what = "" if cell is None else (f" · ran {cell.family} {cell.row}"
                                        f"{'' if cell.seed is None else f' seed {cell.seed}'} "
                                        f"{cell.task.name} {cell.task.ratio:g}")
        estimate = "time left unknown yet" if left is None else f"~{duration_text(left)} left"
        self.echo(f"[bench {self.bench['name']}] {len(done & {c.key for c in self.cells})}/{total} cells done{what} · "
                  f"elapsed {duration_text(time.perf_counter() - self.started)} · {estimate}")
