"""The results page's tables, from one bench.json's tables: the main table with its ties, the versus
table, per-class damage, the ablations, the cost and the cells."""
from __future__ import annotations

import json
import math
from pathlib import Path

from i2i_unlearn.evaluation.bench_cost import NOT_RECORDED, REFERENCE_GFLOPS, row_unlearning_at_reference
from i2i_unlearn.evaluation.bench_targets import MISSING, _change, _stat
from i2i_unlearn.evaluation.metrics import can_pair, compare_rows
from i2i_unlearn.text import escape_markdown as md

# (set, view, score, header, good direction, decimals): the main table's columns
MAIN_COLUMNS = [
    ("forget", "whole", "fid", "forget FID ↑", "higher", 2),
    ("forget", "whole", "recognition", "forget recog. ↓", "lower", 3),
    ("forget", "whole", "similarity", "forget sim. ↓", "lower", 3),
    ("retain", "whole", "fid", "retain FID ↓", "lower", 2),
    ("retain", "whole", "similarity", "retain sim. ↑", "higher", 3),
    ("forget", "hole", "fid", "hole: forget FID ↑", "higher", 2),
    ("forget", "hole", "recognition", "hole: forget recog. ↓", "lower", 3),
    ("retain", "hole", "fid", "hole: retain FID ↓", "lower", 2),
    ("retain", "hole", "similarity", "hole: retain sim. ↑", "higher", 3),
]

VERSUS_COLUMNS = [c for c in MAIN_COLUMNS if c[2] in ("fid", "recognition", "similarity")]

CLASS_COLUMNS = [("fid", "FID", 2), ("similarity", "similarity", 3), ("recognition", "recognition", 3)]

LEGEND = ("Each number is the mean over unlearning seeds ± the 95 % half-width hw = sqrt(seed half-width² + "
          "bootstrap half-width²): the Student-t interval over seeds (none for one seed) and the bootstrap over test "
          "images. **Bold**: the best method on that column; ≈: tied with it, so not a loss either: the 95 % interval of "
          "the paired difference holds zero (the same test images and bootstrap resamples for both rows, so the noise "
          "they share cancels, plus the seeds' spread; metrics.paired_difference), or, for cells run before the "
          "resamples were kept, the unpaired rule: the difference is inside sqrt(hw_a² + hw_b²), which calls more "
          "ties. Rows in italics are references. "
          "\"hole:\" scores the hidden region alone (its bounding box, resized to the evaluator's input), since the "
          "visible frame dominates whole-image numbers.")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]

def _number(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return f"{value:.{digits}f}"


def _cell(stat: dict | None, digits: int) -> str:
    if not stat or stat.get("mean") is None:
        return MISSING
    text = _number(stat["mean"], digits)
    return text + (f" ± {_number(stat['hw'], digits)}" if stat.get("hw") is not None else "")

def _task_name(task: dict) -> str:
    return f"{task['name']} {task['ratio']:g}"

def _row_name(row: dict) -> str:
    name = md(row["name"])
    return f"*{name}*" if row["group"] == "reference" else name

def _seeds(row: dict) -> str:
    done, planned = len(row.get("seeds") or []), len(row.get("planned_seeds") or [])
    return f"{done}" if done == planned else f"{done}/{planned}"

def _is_method(row: dict) -> bool:
    """A method as configured (a main row, or the same model scored on another task by an ablation)."""
    return row["group"] != "reference" and bool(row.get("label")) and not row.get("setting")

def main_table(rows: list[dict]) -> list[str]:
    """References and methods as configured; per column the best method bold, its ties marked ≈."""
    methods = [r for r in rows if _is_method(r) and r.get("scores")]
    marks: dict[tuple, str] = {}
    for set_name, view, key, _, good, _ in MAIN_COLUMNS:
        stats = [(r, _stat(r, set_name, view, key)) for r in methods]
        stats = [(r, s) for r, s in stats if s and s.get("mean") is not None]
        if len(stats) < 2:
            continue
        best_row, best = (max if good == "higher" else min)(stats, key=lambda item: item[1]["mean"])
        for r, s in stats:
            if r is best_row:
                marks[(r["name"], set_name, view, key)] = "best"
            elif compare_rows(s, best, good) == "tie":
                marks[(r["name"], set_name, view, key)] = "tie"
    body = []
    for row in [r for r in rows if r["group"] == "reference" or _is_method(r)]:
        cells = [_row_name(row), _seeds(row)]
        for set_name, view, key, _, _, digits in MAIN_COLUMNS:
            text = _cell(_stat(row, set_name, view, key), digits)
            mark = marks.get((row["name"], set_name, view, key))
            cells.append(f"**{text}**" if mark == "best" else f"≈ {text}" if mark == "tie" else text)
        body.append(cells)
    return _table(["row", "seeds", *(c[3] for c in MAIN_COLUMNS)], body)

VERSUS_RULES = {"paired": "by the interval of the paired difference: the same test images and resamples, and the "
                          "seeds' spread of the difference",
                "unpaired": "inside the combined interval: these cells kept no bootstrap replicates to pair",
                "mixed": "paired where both rows kept bootstrap replicates, else inside the combined interval"}


def versus_verdicts(rows: list[dict], reference: str) -> list[dict]:
    """Each method row against one reference row, per versus column: {row, set, view, score, verdict ('better',
    'worse', 'tie' by compare_rows, or None when a side has no score), rule ('paired' | 'unpaired' | None)}."""
    ref = next((r for r in rows if r["name"] == reference and r.get("scores")), None)
    if ref is None:
        return []
    verdicts = []
    for row in [r for r in rows if _is_method(r) and r.get("scores")]:
        for set_name, view, key, _, good, _ in VERSUS_COLUMNS:
            a, b = _stat(row, set_name, view, key), _stat(ref, set_name, view, key)
            verdict = compare_rows(a, b, good)
            verdicts.append({"row": row["name"], "set": set_name, "view": view, "score": key, "verdict": verdict,
                             "rule": ("paired" if can_pair(a, b) else "unpaired") if verdict else None})
    return verdicts


def versus_table(rows: list[dict], reference: str) -> tuple[list[str], str | None]:
    """versus_verdicts as a table, one line per method; and which rule judged them (a key of VERSUS_RULES)."""
    verdicts = versus_verdicts(rows, reference)
    width = len(VERSUS_COLUMNS)
    body = [[md(line[0]["row"]), *(v["verdict"] or MISSING for v in line)]
            for line in (verdicts[i:i + width] for i in range(0, len(verdicts), width))]
    rules = {v["rule"] for v in verdicts if v["rule"]}
    rule = None if not rules else rules.pop() if len(rules) == 1 else "mixed"
    return (_table(["method", *(c[3] for c in VERSUS_COLUMNS)], body) if body else []), rule

def collateral_tables(table: dict) -> list[str]:
    collateral = table.get("collateral") or {}
    if not collateral:
        return []
    paired = {change[key].get("paired", False) for entry in collateral.values() for change in entry["classes"]
              for key in ("fid", "similarity", "recognition") if change[key].get("verdict")}
    rule = ("the paired interval of the difference (each class resampled alike in every cell, and the seeds' "
            "spread) holds 0" if paired == {True} else "inside the combined interval" if paired <= {False}
            else "the paired interval holds 0 where both rows kept replicates, else inside the combined interval")
    lines = ["Each retain class alone against the original: FID as a ratio (above 1: damage), similarity and the "
             f"evaluator's recognition of that class as differences (below 0: damage); (tie): {rule}.", ""]
    worst = []
    for name, entry in collateral.items():
        change = next((c for c in entry["classes"] if c["class"] == entry["worst"]), None)
        worst.append([md(name), md(entry["worst"] or MISSING), _change("fid", change["fid"]) if change else MISSING,
                      _change("similarity", change["similarity"]) if change else MISSING,
                      _change("recognition", change["recognition"]) if change else MISSING])
    lines += _table(["row", "worst retain class (FID ratio)", "its FID", "its similarity", "its recognition"], worst)
    classes = list(dict.fromkeys(c["class"] for entry in collateral.values() for c in entry["classes"]))
    names = [r["name"] for r in table["rows"] if _is_method(r) and r["name"] in collateral]
    body = []
    for class_name in classes:
        cells = [md(class_name)]
        for name in names:
            change = next((c for c in collateral[name]["classes"] if c["class"] == class_name), None)
            cells.append(_change("fid", change["fid"]) if change else MISSING)
        body.append(cells)
    lines += ["FID ratio to the original, per retain class:", ""]
    lines += _table(["retain class", *(md(n) for n in names)], body)
    return lines


def ablation_table(rows: list[dict], group: str) -> list[str]:
    """An ablation's settings (an ablation of tasks alone shows as the main table of its task)."""
    members = [r for r in rows if r["group"] == group and not _is_method(r)]
    if not members:
        return []
    columns = [c for c in MAIN_COLUMNS if c[2] in ("fid", "recognition")]
    body = [[md(r["name"]), _seeds(r), *(_cell(_stat(r, s, v, k), d) for s, v, k, _, _, d in columns)]
            for r in members]
    return _table(["row", "seeds", *(c[3] for c in columns)], body)

def cost_table(bench: dict, table: dict) -> list[str]:
    """Each row's cost; its unlearning seconds also at the reference speed, which compares across machines
    (evaluation/bench_cost.py), where every one of its cells recorded the machine's speed."""
    body = []
    for row in table["rows"]:
        cost = row.get("cost") or {}
        if not cost:
            continue
        seconds = cost.get("unlearning_wall_time_s")
        reference = row_unlearning_at_reference(bench, table, row["name"]) if seconds else None
        body.append([_row_name(row), _number(cost.get("steps"), 0), _number(seconds, 1),
                     NOT_RECORDED if seconds and reference is None else _number(reference, 1),
                     _number(cost.get("steps_per_s"), 2), _number(cost.get("unlearning_peak_rss_mb"), 0),
                     _number(cost.get("evaluation_wall_time_s"), 1), _number(cost.get("evaluation_peak_rss_mb"), 0)])
    return _table(["row", "optimizer steps", "unlearning s (median over seeds)",
                   f"unlearning s at {REFERENCE_GFLOPS:.0f} GFLOP/s", "steps/s", "unlearning peak RSS MB",
                   "evaluation s", "evaluation peak RSS MB"], body) if body else []

def _main_table(bench: dict) -> dict | None:
    main_task = json.dumps((bench["config"].get("tasks") or [{}])[0], sort_keys=True)
    return next((t for t in bench["tables"] if json.dumps(t["task"], sort_keys=True) == main_task), None)

def cells_table(bench: dict) -> list[str]:
    body = []
    for cell in bench["cells"]:
        cost = cell.get("cost") or {}
        unlearning = cost.get("unlearning") or {}
        evaluation = cost.get("evaluation") or {}
        body.append([md(cell["family"]), md(cell["row"]), MISSING if cell["seed"] is None else str(cell["seed"]),
                     md(_task_name(cell["task"])), cell["status"], _number(unlearning.get("wall_time_s"), 1),
                     _number(unlearning.get("steps_per_s"), 2), _number(_cores_busy(unlearning), 2),
                     _number(evaluation.get("wall_time_s"), 1),
                     _number((unlearning.get("host") or evaluation.get("host") or {}).get("matmul_gflops"), 1),
                     f"`{cell['key'][:12]}`"])
    return ["Cores busy: the unlearning run's CPU time over its wall time (about 2 on 2 free cores; well below, the "
            "run shared the machine with another job). Machine speed: float32 matmul GFLOP/s measured at the start "
            f"of each cell ({MISSING} for cells run before it was recorded); cells of different sessions ran on "
            "different machines.", "",
            *_table(["family", "row", "seed", "task", "status", "unlearning s", "steps/s", "cores busy",
                     "evaluation s", "machine GFLOP/s", "cell"], body)]

def _cores_busy(unlearning: dict) -> float | None:
    """CPU time over wall time of the last invocation (a resumed run's CPU time is only its own)."""
    wall = unlearning.get("wall_time_this_run_s") or unlearning.get("wall_time_s")
    cpu = unlearning.get("cpu_time_s")
    return cpu / wall if cpu and wall else None

def methods_list(bench: dict) -> list[str]:
    """What each method row runs: its knobs file and what the bench sets over it."""
    originals = [Path(f["original"]).name for f in (bench.get("families") or {}).values()]
    model = originals[0] if len(originals) == 1 else None   # several families: the knobs file is per family
    lines = []
    for label, spec in (bench.get("methods") or {}).items():
        overrides = {**({"method": spec["method"]} if spec.get("method") else {}), **(spec.get("set") or {})}
        shown = ", ".join(f"{key} {json.dumps(value)}" for key, value in overrides.items())
        knobs = spec["knobs"].replace("{model}", model) if model else spec["knobs"]
        lines.append(f"- {md(label)}: `{knobs}`" + (f", with {md(shown)}" if shown else "")
                     + (f"; {md(spec['doc'])}" if spec.get("doc") else ""))
    if not lines:
        return []
    return ["Method rows: each one's knobs file" + ("" if model else " ({model}: the original's folder name)")
            + " and what the bench sets over it:", "", *lines, ""]
