"""Running cells: unlearning runs (resumable), their evaluations, the bench loop."""
from __future__ import annotations

import copy
import dataclasses
import json
import sys
from pathlib import Path

from i2i_unlearn.bench.aggregate import BENCH_JSON, SETS, shown, write_bench_json
from i2i_unlearn.bench.cache import BENCH_CODE_VERSION, UNLEARNING_RECORD, cell_record, finished_cell
from i2i_unlearn.bench.measure import Measure, now
from i2i_unlearn.host import host_speed
from i2i_unlearn.bench.plan import Cell, make_plan, planned_steps, running_order
from i2i_unlearn.bench.progress import Progress
from i2i_unlearn.checkpoints import CHECKPOINTS, read_json, sha256_file, versions, write_json_atomic
from i2i_unlearn.config import TaskConfig, UnlearnConfig, to_dict
from i2i_unlearn.data import load_split, make_unlearn_split
from i2i_unlearn.evaluation.collect import collect_set
from i2i_unlearn.evaluation.embedders import load_embedder
from i2i_unlearn.evaluation.scoring import score_set
from i2i_unlearn.lineage import default_retain_classes, training_data_config
from i2i_unlearn.models import load_model
from i2i_unlearn.runs import total_wall_time
from i2i_unlearn.unlearn import unlearn


def finished_unlearning(cell: Cell) -> dict | None:
    path = cell.model_dir / UNLEARNING_RECORD
    if not path.is_file():
        return None
    record = read_json(path)
    return record if record.get("key") == cell.unlearn_key else None

def checkpoint_step(directory: Path) -> int:
    done = sorted((directory / CHECKPOINTS).glob("step-*[0-9]")) if (directory / CHECKPOINTS).is_dir() else []
    return int(done[-1].name.split("-")[1]) if done else 0

def run_unlearning(cell: Cell, bench: dict) -> dict:
    """The cell's unlearned model (cached by its key); a killed run continues from its last checkpoint. A
    starts_from cell's start is made first (if its folder is gone) and unlearned from; its cost is added."""
    record = finished_unlearning(cell)
    if record is not None:
        return record
    start = run_unlearning(cell.start, bench) if cell.start is not None else None
    # what this run unlearns: the original, or the start's unlearned model
    source = cell.start.model_dir if cell.start is not None else bench["families"][cell.family]["original"]
    run_json = cell.model_dir / "run.json"
    if run_json.is_file() and (cell.model_dir / "model.safetensors").is_file():
        # finished, but killed before its bench record (e.g. while its checkpoints were being removed)
        wall = total_wall_time(read_json(run_json))
        return _record_unlearning(cell, bench, source, {"wall_time_s": wall, "peak_rss_mb": None,
                                                          "peak_rss_scope": None}, 0, wall, start)
    resume_from = checkpoint_step(cell.model_dir) if cell.model_dir.is_dir() else 0
    data_root = bench["datasets"][bench["families"][cell.family]["dataset"]]["root"]
    host = host_speed()
    with Measure() as measure:
        unlearn(source, copy.deepcopy(cell.config), cell.model_dir, resume=resume_from > 0,
                overwrite=resume_from == 0, data_root=data_root)
    measured = measure.record()
    if resume_from:   # the cell's cost is the whole run's: add what the killed invocations spent (run.json)
        run = read_json(run_json)
        measured = {**measured, "wall_time_this_run_s": measured["wall_time_s"],
                    "wall_time_s": round(measured["wall_time_s"] + total_wall_time(run) - run["wall_time_s"], 2)}
    return _record_unlearning(cell, bench, source, {**measured, "host": host}, resume_from, measure.seconds,
                              start)

def _record_unlearning(cell: Cell, bench: dict, source: Path, measured: dict, resume_from: int,
                       seconds: float | None, start: dict | None = None) -> dict:
    steps = planned_steps(cell) or cell.config.steps
    done = max(0, steps - resume_from)
    cost = {**measured, "steps": steps, "steps_this_run": done, "resumed_from_step": resume_from or None,
            "steps_per_s": round(done / seconds, 3) if seconds and done else None}
    if start is not None:   # the whole way from the original: the start's run, then this one
        cost.setdefault("wall_time_this_run_s", cost["wall_time_s"])   # this run's own (progress, the bench's sum)
        cost.update(wall_time_s=round(cost["wall_time_s"] + start["cost"]["wall_time_s"], 2),
                    steps=steps + start["cost"]["steps"],
                    start={"key": start["key"], "wall_time_s": start["cost"]["wall_time_s"],
                           "steps": start["cost"]["steps"]})
    record = {"key": cell.unlearn_key, "method": cell.config.method, "config": to_dict(cell.config),
              "original_dir": shown(source, bench),   # what it unlearned: the original, or its start's model
              "weights_sha256": sha256_file(cell.model_dir / "model.safetensors"), "cost": cost}
    write_json_atomic(bench["results"] / "unlearning" / f"{cell.unlearn_key}.json", record)
    write_json_atomic(cell.model_dir / UNLEARNING_RECORD, record)   # last: the run is done
    return record

class _Family:
    """What every evaluation of one family shares: the held-out sets and the evaluator, loaded once."""

    def __init__(self, bench: dict, family: str):
        spec = bench["families"][family]
        original = load_model(spec["original"])
        forget = bench["datasets"][spec["dataset"]]["forget_classes"]
        data = training_data_config(original)
        root = bench["datasets"][spec["dataset"]]["root"]
        if root:
            data.root = root
        self.split = make_unlearn_split(data, UnlearnConfig(forget_classes=forget,
                                                            retain_classes=default_retain_classes(original, forget)),
                                        bench["split"])
        if bench["eval_per_class"]:   # a smaller bench: the first N held-out images of each class (a seeded order)
            self.split = dataclasses.replace(self.split, **{
                f"{side}_eval": _first_per_class(getattr(self.split, f"{side}_eval"), bench["eval_per_class"])
                for side in SETS})
        self.evaluator = load_embedder(str(bench["evaluator"]))
        self.evaluator_classes = self.evaluator.class_names if self.evaluator.has_classes else []
        self.forget_indices = [self.evaluator_classes.index(n) for n in self.split.forget_class_names
                               if n in self.evaluator_classes]

def _first_per_class(images, count: int):
    import torch
    keep = [i for label in sorted(set(images.labels.tolist()))
            for i in torch.nonzero(images.labels == label).flatten()[:count].tolist()]
    return images.subset(sorted(keep))

def evaluate_cell(model, family: _Family, task: TaskConfig, bench: dict) -> dict:
    """Every score of one model on the held-out forget and retain sets (scoring.score_set), read batch by batch."""
    seed = bench["eval_seed"]
    out = {"metrics": {}, "hole_metrics": {}, "intervals": {}, "replicates": {}, "per_class": {}, "counts": {}}
    for set_name in SETS:
        images = getattr(family.split, f"{set_name}_eval")
        out["counts"][set_name] = len(images)
        if len(images) < 2:
            for key in ("metrics", "hole_metrics", "intervals", "replicates"):
                out[key][set_name] = None
            continue
        collected = collect_set({"model": model}, images, task, seed, family.evaluator, noise=True,
                                description=f"bench: {set_name} images")
        scored = score_set(collected.rows["model"], collected.truths["model"], images.labels, images.class_names,
                           family.forget_indices, family.evaluator_classes, bootstrap=bench["bootstrap"], seed=seed)
        out["metrics"][set_name], out["hole_metrics"][set_name] = scored["whole"], scored["hole"]
        out["intervals"][set_name] = scored["intervals"]
        out["replicates"][set_name] = scored["replicates"]
        for name, entry in (scored["per_class"] or {}).items():
            out["per_class"][name] = {"set": set_name, **entry}
    return out

def run_cell(cell: Cell, bench: dict, families: dict, command: str) -> dict:
    """Unlearn (if the cell's model is not there yet), evaluate, write <results>/cells/<key>.json."""
    unlearning = run_unlearning(cell, bench) if cell.config is not None else None
    if cell.family not in families:
        families[cell.family] = _Family(bench, cell.family)
    family = families[cell.family]
    host = host_speed()
    with Measure() as measure:
        model = load_model(cell.model_dir)
        scores = evaluate_cell(model, family, cell.task, bench)
    record = {"key": cell.key, "unlearn_key": cell.unlearn_key, "task": to_dict(cell.task),
              "model": {"weights_sha256": model.pretrained_info["weights_sha256"], "family": model.family,
                        "method": cell.config.method if cell.config else None,
                        "config": to_dict(cell.config) if cell.config else None,
                        "reference_dir": None if cell.config else shown(cell.model_dir, bench)},
              "split": bench["split"], "eval_seed": bench["eval_seed"], "bootstrap": bench["bootstrap"],
              "evaluator": family.evaluator.describe(), "forget_classes": family.split.forget_class_names,
              "versions": versions(), "code_version": BENCH_CODE_VERSION, **scores,
              "cost": {"evaluation": {**measure.record(), "images": sum(scores["counts"].values()), "host": host},
                       "unlearning": (unlearning or {}).get("cost")},
              "run": {"command": command, "created": now()}}
    write_json_atomic(bench["results"] / "cells" / f"{cell.key}.json", record)
    return record

def preflight(bench: dict, cells: list[Cell]) -> None:
    """Everything a cell will need, checked before any compute: model folders and their hashes, the
    evaluator, proxy datasets (e.g. Fashion-MNIST: its error says how to install it)."""
    for family, spec in bench["families"].items():
        for directory in [spec["original"], *spec["retrained"]]:
            load_model(directory)
    proxies = {json.dumps(to_dict(c.config.proxy), sort_keys=True): c.config.proxy for c in cells
               if c.config is not None and c.config.proxy is not None}
    for proxy in proxies.values():
        load_split(proxy)

def run_bench(bench: dict, *, command: str = "", methods: list[str] | None = None, echo=print) -> dict:
    """Run every missing cell, then return bench.json's content (also written after every cell)."""
    cells = make_plan(bench, methods)
    preflight(bench, cells)
    bench["results"].mkdir(parents=True, exist_ok=True)
    progress = Progress(cells, bench, echo)
    done, unlearned, families = set(), set(), {}
    for cell in cells:   # cached cells first: they count for the estimate
        record = finished_cell(bench, cell.key)
        if record is not None:
            done.add(cell.key)
            progress.observe(cell, record)
            if cell.unlearn_key:
                unlearned.add(cell.unlearn_key)
    progress.report(None, done, unlearned)
    for cell in running_order(cells, done):
        if cell.key in done:
            if not _scored_other_weights(bench, cell):
                continue
            echo(f"[bench {bench['name']}] {cell.family} {cell.row} seed {cell.seed} {cell.task.name} "
                 f"{cell.task.ratio:g}: scored again, its model was made again (the folder was gone)")
        record = run_cell(cell, bench, families, command)
        done.add(cell.key)
        if cell.unlearn_key:
            unlearned.add(cell.unlearn_key)
        progress.observe(cell, record)
        write_bench_json(bench, cells, command)
        progress.report(cell, done, unlearned)
    result = write_bench_json(bench, cells, command)
    if methods is None:   # the whole plan is done: what it no longer names is from knobs or rows since replaced
        removed = prune_records(bench, cells)
        if removed:
            echo(f"[bench {bench['name']}] removed {removed} records the plan no longer names (earlier knobs or rows)")
    for line in summary_lines(result):
        echo(line)
    return result

def prune_records(bench: dict, cells: list[Cell]) -> int:
    """Delete the cell and unlearning records of results/ that no cell of the whole plan names (git keeps them);
    returns how many. The unlearned models in work/ are left: a run is expensive to make again."""
    named = {"cells": {c.key for c in cells}, "unlearning": {c.unlearn_key for c in cells if c.unlearn_key}}
    stale = [path for folder, keys in named.items() for path in sorted((bench["results"] / folder).glob("*.json"))
             if path.stem not in keys]
    for path in stale:
        path.unlink()
    return len(stale)

def _scored_other_weights(bench: dict, cell: Cell) -> bool:
    """A finished cell whose model has since been made again with other weights (same key, e.g. its folder
    was lost and the remake ran on another machine): its scores are not those of the model the bench holds."""
    if not cell.unlearn_key:
        return False
    record = cell_record(bench, cell.key)
    unlearning = bench["results"] / "unlearning" / f"{cell.unlearn_key}.json"
    if record is None or not unlearning.is_file():
        return False
    return record["model"]["weights_sha256"] != read_json(unlearning)["weights_sha256"]

def rewrite_tables(bench: dict, methods: list[str] | None = None) -> dict:
    """bench.json again from the finished cells, nothing run: to publish a bench stopped part-way, or its tables
    after a change to how they are assembled. It keeps the command of the run that made the cells."""
    previous = bench["results"] / BENCH_JSON
    command = read_json(previous).get("command", "") if previous.is_file() else ""
    return write_bench_json(bench, make_plan(bench, methods), command)

def summary_lines(result: dict) -> list[str]:
    """The worst retain class of each row (its FID ratio to the original), per family and task."""
    lines = []
    for table in result["tables"]:
        worst = []
        for row, entry in (table.get("collateral") or {}).items():
            change = next((c for c in entry["classes"] if c["class"] == entry["worst"]), None)
            if change and change["fid"]["change"] is not None:
                tie = " (tie)" if change["fid"]["verdict"] == "tie" else ""
                worst.append(f"{row} {entry['worst']} {change['fid']['change']:.2f}x{tie}")
        if worst:
            lines.append(f"{table['family']} {table['task']['name']} {table['task']['ratio']:g}: worst retain class "
                         f"(FID ratio to the original): " + "; ".join(worst))
    return lines

def command_line() -> str:
    return "i2i-unlearn " + " ".join(sys.argv[1:])
