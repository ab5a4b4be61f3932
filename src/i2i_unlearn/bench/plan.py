"""The plan: every cell of a bench, the order they run in, and its size (the dry run)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from i2i_unlearn.bench.cache import UNLEARNING_RECORD, eval_key, finished_cell, unlearn_key
from i2i_unlearn.bench.measure import duration_text
from i2i_unlearn.bench.spec import MissingKnobs, method_config
from i2i_unlearn.checkpoints import read_config_dir
from i2i_unlearn.config import TaskConfig, UnlearnConfig, to_dict
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.embedders import load_embedder


@dataclass
class Cell:
    family: str
    row: str                     # table row: original, retrained, a method label, or "<label> <setting>"
    group: str                   # reference, main, or an ablation's name
    task: TaskConfig
    key: str                     # the evaluation's key: <results>/cells/<key>.json
    seed: int | None = None      # unlearning seed; a reference's index among its folders
    label: str | None = None     # the bench's method label (methods: section)
    setting: str = ""            # the ablation setting's name
    vary: dict | None = None     # {"key", "value"} of a vary-ablation
    config: UnlearnConfig | None = None
    unlearn_key: str | None = None
    model_dir: Path | None = None   # a reference's folder; an unlearned model's folder under <work>/models
    overrides: dict = field(default_factory=dict)
    retrain_steps: int | None = None  # method retrain: the original's training steps
    start: "Cell | None" = None      # a starts_from method: the cell whose unlearned model this one starts from

    def describe(self) -> dict:
        return {"family": self.family, "row": self.row, "group": self.group, "task": to_dict(self.task),
                "seed": self.seed, "label": self.label, "setting": self.setting, "vary": self.vary,
                "method": self.config.method if self.config else None, "key": self.key,
                "unlearn_key": self.unlearn_key, "steps": planned_steps(self),
                **({"starts_from": self.start.unlearn_key} if self.start else {})}

def planned_steps(cell: Cell) -> int | None:
    if cell.config is None:
        return None
    return cell.retrain_steps if cell.config.method == "retrain" else cell.config.steps

def _model_info(directory: Path) -> dict:
    return read_config_dir(directory)

def make_plan(bench: dict, methods: list[str] | None = None, *, missing_knobs: list | None = None) -> list[Cell]:
    """Every cell of the bench, in table order: references, main cells seed by seed, ablations (run_bench
    runs them grouped by model, `running_order`).
    `methods`: only these method labels. `missing_knobs`: collect knobs-file errors instead of raising
    (a dry run lists what it can)."""
    evaluator_sha = load_embedder(str(bench["evaluator"])).sha256
    if methods:
        unknown = [m for m in methods if m not in bench["methods"]]
        if unknown:
            raise UserError(f"--methods: {', '.join(unknown)} not in the bench's methods "
                            f"({', '.join(bench['methods'])})")
    cells: list[Cell] = []
    for family, spec in bench["families"].items():
        info = _model_info(spec["original"])
        forget = bench["datasets"][spec["dataset"]]["forget_classes"]
        unlearned: list[Cell] = []

        def cell(label, seed, group, setting_name, overrides, task, vary=None) -> Cell:
            """One cell (MissingKnobs when a knobs file is not there yet); a starts_from method's carries its
            start's main cell of the same seed."""
            start_label = bench["methods"][label]["starts_from"]
            start = cell(start_label, seed, "main", "", {}, bench["tasks"][0]) if start_label else None
            config = method_config(bench, family, label, seed, overrides)
            ukey = unlearn_key(info, config, start.unlearn_key if start else None)
            return Cell(family, f"{label} {setting_name}".strip(), group, task,
                        eval_key(ukey, task, bench, evaluator_sha, forget), seed, label, setting_name, vary, config,
                        ukey, bench["work"] / "models" / ukey, overrides, (info.get("training") or {}).get("steps"),
                        start)

        def add(label, seed, group, setting_name, overrides, tasks, vary=None):
            try:
                unlearned.extend(cell(label, seed, group, setting_name, overrides, task, vary) for task in tasks)
            except MissingKnobs as exc:
                if missing_knobs is None:
                    raise
                missing_knobs.append(str(exc))
        for seed in bench["seeds"]:
            for label in bench["methods"]:
                if not methods or label in methods:
                    add(label, seed, "main", "", {}, bench["tasks"])
        for ablation, spec_a in bench["ablations"].items():
            for label in spec_a["methods"]:
                if methods and label not in methods:
                    continue
                for setting_name, overrides in spec_a["settings"].items():
                    vary = ({"key": spec_a["vary"], "value": _leaf(overrides)} if spec_a["vary"] else None)
                    for seed in spec_a["seeds"]:
                        add(label, seed, ablation, setting_name, overrides, spec_a["tasks"], vary)
        tasks = list({json.dumps(to_dict(c.task)): c.task for c in unlearned}.values()) or bench["tasks"]
        references = [("original", 0, spec["original"]),
                      *(("retrained", i, d) for i, d in enumerate(spec["retrained"]))]
        for task in tasks:
            for row, index, directory in references:
                weights = _model_info(directory)["weights_sha256"]
                cells.append(Cell(family, row, "reference", task,
                                  eval_key(f"reference:{weights}", task, bench, evaluator_sha, forget), index,
                                  model_dir=directory))
        cells += unlearned
    return cells

def _leaf(nested: dict):
    value = nested
    while isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    return value

def running_order(cells: list[Cell], done: set[str]) -> list[Cell]:
    """The cells of every model with a pending cell, model by model: an unlearned model is scored on all its
    tasks (its hole-size cells too) right after it is made, so a bench stopped between sessions, or a machine
    wiped of its models, never leaves a model that must be made again for a later task. Within a model, its
    pending cells come first, then its finished ones, to be checked against the model as it now is."""
    models: dict[str, list[Cell]] = {}
    for cell in cells:
        models.setdefault(cell.unlearn_key or cell.key, []).append(cell)
    order = []
    for model_cells in models.values():
        if any(c.key not in done for c in model_cells):
            order += [c for c in model_cells if c.key not in done] + [c for c in model_cells if c.key in done]
    return order

def dry_run(bench: dict, methods: list[str] | None = None, steps_per_s: float | None = None,
            evaluation_s: float | None = None, echo=print) -> dict:
    """The plan and its size, nothing run: unlearning runs and steps per family, evaluations, and with
    assumed speeds an estimate of the time. Cells already cached are counted apart."""
    missing: list[str] = []
    cells = make_plan(bench, methods, missing_knobs=missing)
    summary: dict = {"families": {}, "missing_knobs": sorted(set(missing))}
    for family in bench["families"]:
        mine = [c for c in cells if c.family == family]
        runs = {c.unlearn_key: c for c in mine if c.unlearn_key}
        evaluations = {c.key for c in mine}
        pending_evaluations = {k for k in evaluations if finished_cell(bench, k) is None}
        # a run is to do when one of its cells is and its model is not there (a fresh clone has the cells only)
        needed = {c.unlearn_key for c in mine if c.key in pending_evaluations}
        pending_runs = {k: c for k, c in runs.items()
                        if k in needed and not (c.model_dir / UNLEARNING_RECORD).is_file()}
        steps = sum(planned_steps(c) or 0 for c in pending_runs.values())
        entry = {"unlearning_runs": len(runs), "pending_unlearning_runs": len(pending_runs),
                 "pending_unlearning_steps": steps, "evaluations": len(evaluations),
                 "pending_evaluations": len(pending_evaluations),
                 "rows": sorted({c.row for c in mine})}
        if steps_per_s and evaluation_s:
            entry["estimated_s"] = round(steps / steps_per_s + len(pending_evaluations) * evaluation_s)
        summary["families"][family] = entry
        echo(f"{family}: {entry['pending_unlearning_runs']}/{entry['unlearning_runs']} unlearning runs to do "
             f"({steps} steps), {entry['pending_evaluations']}/{entry['evaluations']} evaluations to do"
             + (f"; about {duration_text(entry['estimated_s'])} at {steps_per_s:g} steps/s and {evaluation_s:g} s per "
                f"evaluation" if "estimated_s" in entry else ""))
        echo("  rows: " + ", ".join(entry["rows"]))
    for message in summary["missing_knobs"]:
        echo(f"missing: {message}")
    return summary
