"""What controls a run nobody gave a forget weight: the library's default, so the command line and the Python API
decide alike. A class request is budgeted (retain score at most DEFAULT_RETAIN_BUDGET x the original's,
docs/budget.md); a file request stops where its files stop standing out (membership.py). A run given a forget
weight (alpha or a config file), a front, or a controller of its own is left as it is."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from i2i_unlearn.config import UnlearnConfig
from i2i_unlearn.controllers.base import measure_often_enough
from i2i_unlearn.controllers.budget import apply_default_budget
from i2i_unlearn.controllers.membership import apply_default_stop
from i2i_unlearn.errors import UserError


@dataclass
class Given:
    """Which knobs the user set (on the command line or by a config file), as opposed to defaults."""
    forget_weight: bool = False        # --alpha, or a config file (which names its own alpha)
    front: bool = False
    steps: bool = False
    checkpoint_every: bool = False
    evaluator: bool = False
    budget_flags: list[str] = field(default_factory=list)   # e.g. ["--budget-metric"]: only for a budgeted run


def apply_default_control(config: UnlearnConfig, model_dir: str | Path, given: Given) -> list[str]:
    """Complete `config` as the default run for what was given; returns the lines that tell the user what was
    chosen. Refuses budget options on a run that will not be budgeted."""
    lines: list[str] = []
    controlled = config.retain_budget is not None or config.stop_at_auc is not None
    if not (given.forget_weight or given.front or controlled or config.method == "retrain") and Path(model_dir).is_dir():
        if config.forget_files:
            lines.append(apply_default_stop(config, steps_given=given.steps))
        else:
            lines += apply_default_budget(config, model_dir, steps_given=given.steps, evaluator_given=given.evaluator)
    elif controlled and not given.checkpoint_every:
        measure_often_enough(config, steps_given=given.steps)
    if given.budget_flags and config.retain_budget is None and not given.front:
        raise UserError(f"{', '.join(given.budget_flags)} only apply to a budgeted run, and this one has a fixed "
                        "forget weight: drop --alpha (the default run is budgeted), or add --retain-budget or --front")
    return lines
