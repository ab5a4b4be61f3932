"""bench.json: the finished cells as tables (mean over seeds, intervals, collateral damage, cost)."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from i2i_unlearn.bench.cache import EVAL_KEY_DOC, UNLEARN_KEY_DOC, cell_record
from i2i_unlearn.bench.measure import now
from i2i_unlearn.bench.plan import Cell
from i2i_unlearn.checkpoints import read_json, versions, write_json_atomic
from i2i_unlearn.config import to_dict
from i2i_unlearn.evaluation.metrics import combined_half_width, seed_interval
from i2i_unlearn.evaluation.results import collateral, half_width, lookup
from i2i_unlearn.evaluation.scoring import KEPT_REPLICATES, REPLICATE_DIGITS
from i2i_unlearn.runs import total_wall_time

BENCH_JSON = "bench.json"

SETS = ("forget", "retain")

VIEWS = ("whole", "hole")

# scores aggregated over seeds (per set and view); the hole view has the first three only
SCORES = ("fid", "similarity", "recognition", "is", "kid_mean", "noise_kl", "hidden_mse")

HOLE_SCORE_KEYS = ("fid", "similarity", "recognition")

CLASS_SCORE_KEYS = ("fid", "similarity", "recognition")

TIE_RULE = ("two rows scored on the same test images are compared through their difference: its bootstrap "
            "replicates (the same resamples for both rows) give the image part of its 95 % interval, the two rows' seed "
            "spreads (Welch) the seed part, combined in quadrature; a difference whose interval holds zero is a tie. "
            "A sweep point of one unlearning run counts the seed spread of its method's main row as that one run's "
            "(`seed_spread`; not in its per-class collateral); the original, one shipped model, counts none. "
            "Rows from cells that kept no replicates fall back to the unpaired rule: a tie when the means differ by "
            "less than sqrt(hw_a² + hw_b²)")

INTERVAL_DOC = ("seed half-width: Student-t 95 % interval of the mean over unlearning seeds (none for one seed); "
                "bootstrap half-width: 1.96 x the bootstrap standard error over test images, root-mean-square over "
                "seeds (every seed is scored on the same test images, so this part does not shrink with more seeds); "
                "hw: both combined in quadrature")

def _interval_row(values: list[float | None], boot_hws: list[float | None]) -> dict | None:
    """Mean over seeds, seed half-width (t), bootstrap half-width (RMS over seeds), combined."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    over_seeds = seed_interval(known)
    boots = [h for h in boot_hws if h is not None]
    boot_hw = math.sqrt(sum(h * h for h in boots) / len(boots)) if boots else None
    return {"mean": over_seeds["mean"], "seed_hw": over_seeds["hw"], "boot_hw": boot_hw,
            "hw": combined_half_width(over_seeds["hw"], boot_hw), "n": len(known), "values": values}

def _seed_mean_replicates(records: list[dict], set_name: str, view: str, key: str) -> list[float] | None:
    """The bootstrap replicates of the mean over seeds (resample r of every seed draws the same images);
    None unless every seed's cell kept its replicates."""
    return _mean_replicates([lookup(r, "replicates", set_name, view, key) for r in records])

def _mean_replicates(per_seed: list[list[float] | None]) -> list[float] | None:
    if not per_seed or any(not values for values in per_seed) or len({len(v) for v in per_seed}) != 1:
        return None
    return [float(f"{sum(column) / len(column):.{REPLICATE_DIGITS}g}") for column in zip(*per_seed)]

def aggregate_row(records: list[dict]) -> dict:
    """One table row from the cell records of its seeds."""
    scores: dict = {}
    for set_name in SETS:
        scores[set_name] = {}
        for view in VIEWS:
            keys = SCORES if view == "whole" else HOLE_SCORE_KEYS
            block = {}
            for key in keys:
                values, hws = [], []
                for record in records:
                    source = record["metrics" if view == "whole" else "hole_metrics"].get(set_name)
                    values.append(None if source is None else source.get(key))
                    hws.append(half_width(lookup(record, "intervals", set_name, view, key)))
                block[key] = _interval_row(values, hws)
                replicates = _seed_mean_replicates(records, set_name, view, key) if key in KEPT_REPLICATES[view] else None
                if block[key] and replicates:
                    block[key]["replicates"] = replicates
            scores[set_name][view] = block
    classes: dict = {}
    names = list(dict.fromkeys(name for record in records for name in record.get("per_class") or {}))
    for name in names:
        entries = [(record.get("per_class") or {}).get(name) for record in records]
        first = next(e for e in entries if e)
        classes[name] = {"set": first["set"], "count": first["count"]}
        for view in VIEWS:
            classes[name][view] = {
                key: _interval_row([lookup(e, view, key) for e in entries],
                                   [half_width(lookup(e, "intervals", view, key)) for e in entries])
                for key in CLASS_SCORE_KEYS}
        for key in CLASS_SCORE_KEYS:   # each class is resampled alike in every cell: the collateral pairs them
            replicates = _mean_replicates([lookup(e, "replicates", "whole", key) for e in entries])
            if classes[name]["whole"][key] and replicates:
                classes[name]["whole"][key]["replicates"] = replicates
    costs = [record.get("cost") or {} for record in records]
    unlearning = [c["unlearning"] for c in costs if c.get("unlearning")]
    evaluation = [c["evaluation"] for c in costs if c.get("evaluation")]

    def median(items, key):
        """Over seeds: a seed slowed by another job on the machine does not move it (wall times are not scores)."""
        values = [i[key] for i in items if i.get(key) is not None]
        return round(statistics.median(values), 3) if values else None
    cost = {"unlearning_wall_time_s": median(unlearning, "wall_time_s"), "steps": median(unlearning, "steps"),
            "steps_per_s": median(unlearning, "steps_per_s"),
            "unlearning_peak_rss_mb": max((u["peak_rss_mb"] for u in unlearning if u.get("peak_rss_mb")), default=None),
            "evaluation_wall_time_s": median(evaluation, "wall_time_s"),
            "evaluation_peak_rss_mb": max((e["peak_rss_mb"] for e in evaluation if e.get("peak_rss_mb")), default=None)}
    return {"scores": scores, "per_class": classes, "cost": cost}

def borrow_seed_spreads(rows: list[dict]) -> None:
    """A sweep point of one unlearning seed (an ablation varying one knob of a method) gets, score by score, the
    seed spread of its method's main row (the same bench label) as `seed_spread` {sd, dof, from}: one run is one
    draw of that seed noise, which a comparison with it must count (metrics.paired_difference), where a shipped
    model of one seed (the original) adds none. Not its per-class scores; not a settings ablation's rows, whose
    settings may be another main row's (the retain-size row without real retain images is ours-proxy's)."""
    main = {row["label"]: row for row in rows if row["group"] == "main" and row.get("scores")}
    for row in rows:
        source = main.get(row.get("label"))
        if not row.get("vary") or source is None or not row.get("scores") or len(row["seeds"]) != 1:
            continue
        for set_name, views in row["scores"].items():
            for view, block in views.items():
                for key, stat in block.items():
                    theirs = ((source["scores"].get(set_name) or {}).get(view) or {}).get(key) or {}
                    values = [v for v in theirs.get("values") or [] if v is not None]
                    if stat and len(values) >= 2:
                        stat["seed_spread"] = {"sd": statistics.stdev(values), "dof": len(values) - 1,
                                               "from": source["name"]}


def _collateral(rows: list[dict]) -> dict:
    def field(entry, name):
        return {k: (entry["whole"][k] or {}).get(name) for k in CLASS_SCORE_KEYS}
    per_class = {row["name"]: {name: {"set": entry["set"], "whole": field(entry, "mean"),
                                      "values": {"whole": field(entry, "values")},
                                      "replicates": {"whole": field(entry, "replicates")}}
                               for name, entry in row["per_class"].items()} for row in rows if row["per_class"]}
    widths = {(row["name"], name, key): (entry["whole"][key] or {}).get("hw")
              for row in rows for name, entry in row["per_class"].items() for key in CLASS_SCORE_KEYS}
    return collateral(per_class, "original", lambda row, name, key: widths.get((row, name, key)))

def assemble(bench: dict, cells: list[Cell]) -> dict:
    """The tables of bench.json from every finished cell (cells not run yet are listed as pending)."""
    tables: dict[tuple, dict] = {}
    cell_list = []
    records = {cell.key: cell_record(bench, cell.key) for cell in cells}
    for cell in cells:
        record = records[cell.key]
        cell_list.append({**cell.describe(), "status": "done" if record else "pending",
                          "cost": record.get("cost") if record else None,
                          "created": (record.get("run") or {}).get("created") if record else None})
        table = tables.setdefault((cell.family, json.dumps(to_dict(cell.task))), {
            "family": cell.family, "task": to_dict(cell.task), "rows": {}})
        row = table["rows"].setdefault(cell.row, {"name": cell.row, "group": cell.group, "label": cell.label,
                                                  "method": cell.config.method if cell.config else None,
                                                  "setting": cell.setting, "vary": cell.vary, "seeds": [],
                                                  "planned_seeds": [], "records": []})
        if cell.seed not in row["planned_seeds"]:
            row["planned_seeds"].append(cell.seed)
            if record:
                row["seeds"].append(cell.seed)
                row["records"].append(record)
    out_tables = []
    for table in tables.values():
        rows = []
        for row in table["rows"].values():
            seeds = row.pop("records")
            rows.append({**row, **(aggregate_row(seeds) if seeds else {"scores": None, "per_class": {}, "cost": None})})
        borrow_seed_spreads(rows)
        family = bench["families"][table["family"]]
        first = next((records[c.key] for c in cells if c.family == table["family"] and records[c.key]), None)
        out_tables.append({**table, "dataset": family["dataset"],
                           "forget_classes": bench["datasets"][family["dataset"]]["forget_classes"],
                           "counts": (first or {}).get("counts"), "rows": rows,
                           "collateral": _collateral([r for r in rows if r["scores"]])})
    evaluator = next((r["evaluator"] for r in records.values() if r), None)
    return {"tables": out_tables, "cells": cell_list, "evaluator": evaluator}

def write_bench_json(bench: dict, cells: list[Cell], command: str) -> dict:
    assembled = assemble(bench, cells)
    done = [c for c in assembled["cells"] if c["status"] == "done"]
    # each run once: a started run (undo) counts its own time, its start is a run of its own
    unlearning_time = {c["unlearn_key"]: c["cost"]["unlearning"]["wall_time_s"]
                       - ((c["cost"]["unlearning"].get("start") or {}).get("wall_time_s") or 0.0) for c in done
                       if c["unlearn_key"] and (c["cost"] or {}).get("unlearning")
                       and c["cost"]["unlearning"]["wall_time_s"]}
    evaluation_time = {c["key"]: c["cost"]["evaluation"]["wall_time_s"] for c in done}
    record = {
        "bench": bench["name"], "schema_version": 1, "config_file": bench["source"],
        "config": json.loads(json.dumps(bench["raw"], default=str)),
        "command": command, "updated": now(), "work": shown(bench["work"], bench),
        "split": bench["split"], "eval_seed": bench["eval_seed"], "bootstrap": bench["bootstrap"],
        "eval_per_class": bench["eval_per_class"], "seeds": bench["seeds"], "level": 0.95,
        "families": {name: {"dataset": f["dataset"], "original": shown(f["original"], bench),
                            "retrained": [shown(r, bench) for r in f["retrained"]],
                            "training": {"original": training_record(f["original"]),
                                         "retrained": [training_record(r) for r in f["retrained"]],
                                         **({"timed": [{**training_record(t), "dir": shown(t, bench)}
                                                       for t in f["timed"]]} if f.get("timed") else {})}}
                     for name, f in bench["families"].items()},
        "methods": {label: {**m, "knobs": m["knobs"]} for label, m in bench["methods"].items()},
        "ablations": {name: {"methods": a["methods"], "seeds": a["seeds"], "vary": a["vary"], "doc": a["doc"],
                             "settings": a["settings"], "tasks": [to_dict(t) for t in a["tasks"]]}
                      for name, a in bench["ablations"].items()},
        "docs": {"unlearn_key": UNLEARN_KEY_DOC, "eval_key": EVAL_KEY_DOC, "intervals": INTERVAL_DOC,
                 "tie_rule": TIE_RULE},
        "progress": {"cells": len({c["key"] for c in assembled["cells"]}), "done": len(evaluation_time),
                     "unlearning_runs": len(unlearning_time),
                     "unlearning_wall_time_s": round(sum(unlearning_time.values()), 1),
                     "evaluation_wall_time_s": round(sum(evaluation_time.values()), 1)},
        "versions": versions(),
        **assembled,
    }
    write_json_atomic(bench["results"] / BENCH_JSON, record)
    return record

def training_record(model_dir) -> dict | None:
    """What training a model folder cost, from its run.json: the denominators of the cost targets (a resumed
    training counts every run's time, not the last one's), with the machine's measured speed where the record
    has it (runs since host.py; the results page normalises the seconds by it)."""
    run_json = Path(model_dir) / "run.json"
    if not run_json.is_file():
        return None
    run = read_json(run_json)
    return {"kind": run.get("kind"), "steps": run.get("steps"),
            "wall_time_s": total_wall_time(run) if "wall_time_s" in run else None, "host": run.get("host")}

def shown(path: Path, bench: dict) -> str:
    path = Path(path)
    root = Path(bench["root"]).resolve()
    return str(path.resolve().relative_to(root)) if path.resolve().is_relative_to(root) else str(path)
