"""docs/targets.json: every target judged so far, one entry each, from the JSON it was measured in.

Written with the results page (benchmarks/make_results_page.py), never typed. Sources: the bench's targets of
each family (bench-*/bench.json, issue 10; judged by evaluation/bench_targets.py), the demo targets of each
tuned method on test (tune-*.json, issue 9), the budgeted runs' demo targets (budget-*.json, issue 13), the
robustness targets of every method (robust-*.json, issue 33), the memory targets of the scale benchmark
(scale_memory.json, issue 34; about no shipped model) and the competence checks of the shipped originals
(competence.json), and the demo targets of the proxy retain set benchmarks/proxy.py chose (proxy-*.json, issue 10).
A method target (does unlearning do X) and a competence check (is the model good enough to
unlearn from) are entries of different `kind`s. A source that
has not run yet gives no entry; a judged target that is not decided is "not run" (a bench still running) or
"not judged" (the target does not apply, e.g. a recognition bar the retrained model itself misses). A demo
target about the original (its retain FID against the mean fill, its recognition of real images) is a competence
check too, whichever run's evaluation measured it. Every entry names the shipped `model` it judges and that
model's `family`; the README's summary (bench/page/summary.py) groups them by model.
"""
from __future__ import annotations

import json
from pathlib import Path

from i2i_unlearn.bench.page.scale import scale_entries
from i2i_unlearn.bench.page.tables import _main_table
from i2i_unlearn.checkpoints import read_json, write_text_atomic
from i2i_unlearn.evaluation.bench_targets import judge_targets
from i2i_unlearn.paths import relative

SCHEMA = {"kind": "method (what unlearning achieves) | competence (the original is fit to unlearn from)",
          "model": "the shipped original the target is about (its folder); family: that model's family",
          "verdict": "met | missed | tie | not run | not judged",
          "interval": "the 95 % interval of the value where its JSON holds one, else null",
          "limit": "the bar the value is judged against, as written (a number, or another row's interval)",
          "measured": "(bench targets) the results page's text of what was measured, both sides"}


def _status(met) -> str:
    return "met" if met is True else "missed" if met is False else "not judged"


def bench_entries(bench: dict, source: str, step_costs=()) -> list[dict]:
    table = _main_table(bench)
    if table is None:
        return []
    done = (bench.get("progress") or {}).get("done", 0) >= (bench.get("progress") or {}).get("cells", 0)
    model = ((bench.get("families") or {}).get(table["family"]) or {}).get("original")
    return [{"issue": 10, "kind": "method", "model": model, "family": table["family"], "bench": bench["bench"],
             "target": t["target"], "value": t["value"], "limit": t["limit"], "interval": t["interval"],
             "measured": t["measured"], "verdict": t["status"] if done else "not run", "detail": t["verdict"],
             "json": source}
            for t in judge_targets(bench, table, step_costs)]


def demo_entries(record: dict, source: str, issue: int, label: str, family: str | None) -> list[dict]:
    """Demo targets (evaluation/targets.py) as recorded: each with value, operator and limit. Those about the
    original (named "original ...") judge the model unlearned from, not the method: competence checks."""
    return [{"issue": issue, "kind": "competence" if t["name"].startswith("original ") else "method",
             "model": record.get("model"), "family": family, "run": label,
             "target": t["name"], "value": t["value"], "limit": f"{t['op']} {t['limit']}", "interval": None,
             "verdict": _status(t["met"]), "json": source} for t in record_targets(record, label)]


def record_targets(record: dict, label: str) -> list[dict]:
    if "test" in record and label in (record["test"] or {}):     # tune-*.json: per method
        return record["test"][label].get("targets") or []
    return (record.get("targets") or {}).get(label) or []        # budget-*.json: per run


def competence_entries(record: dict, source: str, root: Path) -> list[dict]:
    out = []
    for model, entry in (record.get("models") or {}).items():
        for name, value, limit, op in (
                ("forget recognition of the original", entry.get("forget_recognition"),
                 entry.get("forget_recognition_limit"), ">="),
                ("retain FID of the original", entry.get("retain_fid"), entry.get("retain_fid_limit"), "<=")):
            if value is None or limit is None:
                continue
            met = value >= limit if op == ">=" else value <= limit
            out.append({"issue": 9, "kind": "competence", "model": model, "family": model_family(model, root),
                        "target": f"{name} {op} its bar",
                        "value": value, "limit": f"{op} {limit}", "interval": None, "verdict": _status(met),
                        "json": source})
    return out


def robust_entries(record: dict, source: str, root: Path) -> list[dict]:
    """The robustness benchmark's targets (bench/robust.py, issue 33), per method."""
    model = record["spec"]["original"]
    request = "files" if record.get("forget_files") else "class"   # a forget class, or a list of training files
    return [{"issue": 33, "kind": "method", "model": model, "family": model_family(model, root), "run": method,
             "request": request,
             "target": t["name"], "value": t["value"], "limit": t["limit"], "interval": t.get("interval"),
             "verdict": _status(t["met"]), "json": source}
            for method, row in record["rows"].items() for t in row.get("targets") or []]


def model_family(model: str | None, root: Path) -> str | None:
    """The family a model folder's config.json names (None where the folder is not here)."""
    config = Path(root) / model / "config.json" if model else None
    return read_json(config).get("family") if config and config.is_file() else None


def collect(results: Path, root: Path) -> dict:
    """Every entry from the JSON under `results` (benchmarks/results)."""
    entries = []
    step_costs = [read_json(path) for path in sorted(results.glob("step_cost_*.json"))]
    for path in sorted(results.glob("bench-*/bench.json")):
        entries += bench_entries(read_json(path), relative(path, root), step_costs)
    for path in sorted(results.glob("tune-*.json")):
        record = read_json(path)
        for method in sorted(record.get("test") or {}):
            entries += demo_entries(record, relative(path, root), 9, method, model_family(record.get("model"), root))
    for path in sorted(results.glob("budget-*.json")):
        record = read_json(path)
        for run in sorted(record.get("targets") or {}):
            entries += demo_entries(record, relative(path, root), 13, run, model_family(record.get("model"), root))
    for path in sorted(results.glob("proxy-*.json")):   # the chosen proxy retain set's demo targets on test
        record = read_json(path)
        if (record.get("test") or {}).get("targets"):
            label = f"proxy {record['chosen']['run']['name']}"
            entries += demo_entries({"model": record.get("model"), "targets": {label: record["test"]["targets"]}},
                                    relative(path, root), 10, label, model_family(record.get("model"), root))
    for path in sorted(results.glob("robust-*.json")):
        entries += robust_entries(read_json(path), relative(path, root), root)
    if (results / "scale_memory.json").is_file():
        entries += scale_entries(read_json(results / "scale_memory.json"), relative(results / "scale_memory.json", root))
    if (results / "competence.json").is_file():
        entries += competence_entries(read_json(results / "competence.json"), relative(results / "competence.json",
                                                                                        root), root)
    counts = {verdict: sum(e["verdict"] == verdict for e in entries)
              for verdict in ("met", "missed", "tie", "not run", "not judged")}
    return {"schema": SCHEMA, "counts": counts, "targets": entries}


def write_targets(results: Path, out: Path, root: Path) -> Path:
    write_text_atomic(out, json.dumps(collect(results, root), indent=1) + "\n")
    return out
