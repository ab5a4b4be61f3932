"""results.json: its schema check, the metrics it holds (label and good direction per set) and
a plain-text summary for the terminal. The report (evaluation/report/) renders the same content as HTML."""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import torch
from jsonschema.exceptions import best_match

from i2i_unlearn.checkpoints import read_json
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.metrics import can_pair, compare_rows, paired_difference, paired_verdict
from i2i_unlearn.evaluation.scoring import KEPT_REPLICATES

SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
SETS = ("forget", "retain")
ARROWS = {"higher": "↑", "lower": "↓", None: ""}
MISSING = "–"  # shown for a null number


@dataclass(frozen=True)
class Metric:
    key: str    # key in a `scores` object of results.json
    label: str  # report column header
    short: str  # terminal column header
    good: dict  # set name -> "higher", "lower" or None (no better direction on that set)
    digits: int  # decimals shown

    def arrow(self, set_name: str) -> str:
        return ARROWS[self.good[set_name]]

    def header(self, set_name: str, short: bool = False, space: str = " ") -> str:
        """Label and arrow; space="\u00a0" keeps the arrow beside the label where headers wrap."""
        label, arrow = (self.short if short else self.label), self.arrow(set_name)
        return f"{label}{space}{arrow}" if arrow else label


# method.md section 4: forgetting should push forget outputs away from the ground truth and
# toward the outputs for noise, while retain outputs stay as good as before.
METRICS = [
    Metric("fid", "FID", "FID", {"forget": "higher", "retain": "lower"}, 2),
    Metric("kid_mean", "KID", "KID", {"forget": "higher", "retain": "lower"}, 4),  # shown as mean ± kid_std
    Metric("is", "IS", "IS", {"forget": "lower", "retain": "higher"}, 2),
    Metric("similarity", "similarity", "sim", {"forget": "lower", "retain": "higher"}, 3),
    Metric("recognition", "forget-class recognition", "recog", {"forget": "lower", "retain": None}, 3),
    Metric("noise_kl", "KL to noise outputs", "noise KL", {"forget": "lower", "retain": "higher"}, 2),
    Metric("hidden_mse", "hole MSE", "hole MSE", {"forget": "higher", "retain": "lower"}, 4),
]
# The same judgement on the hidden region alone (results.json hole_metrics; settings.hole_view says how).
HOLE_METRICS = [
    Metric("fid", "hole FID", "hole FID", {"forget": "higher", "retain": "lower"}, 2),
    Metric("similarity", "hole similarity", "hole sim", {"forget": "lower", "retain": "higher"}, 3),
    Metric("recognition", "hole forget-class recognition", "hole recog", {"forget": "lower", "retain": None}, 3),
]
# Per retain class (results.json per_class): how each method changes that class against the original.
CLASS_METRICS = {"fid": ("FID", "lower", 2), "similarity": ("similarity", "higher", 3),
                 "recognition": ("recognition", "higher", 3)}
ORIGINAL = "original"


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def _json_path(parts) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or "(top level)"


def validate_results(results: dict) -> None:
    """Raise UserError naming the first field that breaks the schema or the rows' consistency."""
    error = best_match(_validator().iter_errors(results))
    if error is not None:
        message = error.message if len(error.message) <= 200 else error.message[:200] + "…"
        raise UserError(f"invalid results: {_json_path(error.absolute_path)}: {message}")
    # The schema cannot relate fields to each other; the tables need every row to be one or the other.
    for name in results["reference_rows"]:
        if name not in results["metrics"]:
            raise UserError(f"invalid results: reference_rows: {name!r} is not a row of metrics")
    for name in results["metrics"]:
        if name not in results["models"] and name not in results["reference_rows"]:
            raise UserError(f"invalid results: metrics.{name}: neither a model nor a reference row")


def load_results(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"results file not found: {path}")
    results = read_json(path)
    try:
        validate_results(results)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    return results


def format_number(value: float | None, digits: int) -> str:
    if value is None:
        return MISSING
    if value != 0 and math.isfinite(value) and abs(value) < 0.5 * 10 ** -digits:
        return f"{value:.1e}"  # would round to zero
    return f"{value:.{digits}f}"


def format_score(metric: Metric, scores: dict, interval: dict | None = None) -> str:
    """The number, with ± its 95 % half-width when an interval is known (KID: ± its std over subsets)."""
    text = format_number(scores.get(metric.key), metric.digits)
    if metric.key == "kid_mean" and scores[metric.key] is not None and scores["kid_std"] is not None:
        text += f" ± {format_number(scores['kid_std'], metric.digits)}"
    elif interval and scores.get(metric.key) is not None:
        text += f" ± {format_number(half_width(interval), metric.digits)}"
    return text


def half_width(interval: dict | None) -> float | None:
    """Half the width of a {lo, hi} interval (bootstrap intervals are symmetric)."""
    if not interval or interval.get("lo") is None or interval.get("hi") is None:
        return None
    return (interval["hi"] - interval["lo"]) / 2


def lookup(tree: dict | None, *keys: str):
    """tree[k1][k2]... or None where any level is missing (results.json's optional parts)."""
    for key in keys:
        tree = (tree or {}).get(key)
    return tree


def interval_of(results: dict, row: str, set_name: str, view: str, key: str) -> dict | None:
    """The bootstrap interval of one score in results.json, or None (older files, reference rows)."""
    return lookup(results, "intervals", row, set_name, view, key)


def collateral(per_class: dict, original: str = ORIGINAL, half_widths=None) -> dict:
    """For each row but the original: per retain class, the change against the original of FID (ratio),
    similarity and recognition of that class (differences), each judged better/worse/tie, and the worst
    retain class (the largest FID ratio). `per_class`: row -> class -> {"set", "whole": {fid, ...}};
    `half_widths(row, class, key)`: the 95 % half-width of a score (None: unknown, judged without)."""
    half_widths = half_widths or (lambda row, name, key: None)
    if original not in per_class:
        return {}
    base = per_class[original]
    out = {}
    for row, classes in per_class.items():
        if row == original:
            continue
        entries = []
        for name, entry in classes.items():
            if entry.get("set") != "retain" or name not in base:
                continue
            before, after = base[name]["whole"], entry["whole"]
            change = {"class": name}
            for key, (_, good, _) in CLASS_METRICS.items():
                a, b = after.get(key), before.get(key)
                # paired (the interval of the difference over the class's shared resamples, and the seeds' spread
                # where a bench row has seeds) when both rows kept their replicates; results from before: unpaired
                stat_a, stat_b = _class_stat(entry, key, a, half_widths(row, name, key)), _class_stat(
                    base[name], key, b, half_widths(original, name, key))
                change[key] = {"original": b, "value": a,
                               "change": None if a is None or b is None else (a / b if key == "fid" and b else a - b),
                               "verdict": compare_rows(stat_a, stat_b, good), "paired": can_pair(stat_a, stat_b)}
            entries.append(change)
        ratios = [e for e in entries if e["fid"]["change"] is not None]
        worst = max(ratios, key=lambda e: e["fid"]["change"])["class"] if ratios else None
        out[row] = {"classes": entries, "worst": worst}
    return out


def _class_stat(entry: dict, key: str, mean: float | None, hw: float | None) -> dict:
    """compare_rows' statistic of one class's whole-image score: the mean, its half-width, the bootstrap replicates
    (`replicates`: view -> key -> list) and the per-seed values (`values`, a bench row's) where the entry has them."""
    return {"mean": mean, "hw": hw, "replicates": lookup(entry, "replicates", "whole", key),
            "values": lookup(entry, "values", "whole", key)}


def format_change(key: str, change: dict) -> str:
    """A class's change against the original: FID as a ratio, the others as differences; ties marked."""
    value = change["change"]
    if value is None:
        return MISSING
    text = f"{value:.2f}x" if key == "fid" else f"{value:+.3f}"
    return text + (" (tie)" if change["verdict"] == "tie" else "")


def results_collateral(results: dict) -> dict:
    """collateral() of an evaluate results dict, with its per-class bootstrap intervals."""
    per_class = results.get("per_class") or {}

    def hw(row, name, key):
        intervals = lookup(per_class, row, name, "intervals") or {}
        return half_width((intervals.get("whole") or {}).get(key))
    return collateral(per_class, ORIGINAL, hw)


def format_plain(value: float | None) -> str:
    """A number without a known scale (targets)."""
    return MISSING if value is None else f"{value:.4g}"


# The scores whose bootstrap replicates results.json keeps (scoring.KEPT_REPLICATES): what two rows are compared on.
_BY_KEY = {"whole": {m.key: m for m in METRICS}, "hole": {m.key: m for m in HOLE_METRICS}}
PAIRED_SCORES = [(view, _BY_KEY[view][key]) for view, keys in KEPT_REPLICATES.items() for key in keys]



def paired_differences(results: dict) -> tuple[str, dict] | None:
    """Each model against the original (the first model if none is called so): per set and score of PAIRED_SCORES,
    the difference, the 95 % half-width of the paired difference (every row resamples the same test images, so
    the noise they share cancels) and its verdict (better, worse, tie; None where the score has no better side).
    None without two models or without replicates (results from before they were kept)."""
    replicates = results.get("replicates") or {}
    models = [name for name in results["models"] if replicates.get(name)]
    if len(models) < 2:
        return None
    base = ORIGINAL if ORIGINAL in models else models[0]
    out = {}
    for name in models:
        if name == base:
            continue
        out[name] = {}
        for set_name in SETS:
            for view, metric in PAIRED_SCORES:
                a_reps, b_reps = (lookup(replicates, row, set_name, view, metric.key) for row in (name, base))
                scores = "metrics" if view == "whole" else "hole_metrics"
                a, b = (lookup(results, scores, row, set_name, metric.key) for row in (name, base))
                if a is None or b is None or not a_reps or not b_reps:
                    continue
                difference = paired_difference([a], [b], torch.tensor([a_reps]), torch.tensor([b_reps]))
                good = metric.good[set_name]
                out[name][(set_name, view, metric.key)] = {
                    "difference": difference["difference"], "hw": difference["hw"],
                    "verdict": paired_verdict(difference, good) if good else None}
    return base, out


def row_names(results: dict) -> list[str]:
    """Rows of the results tables: models first, then reference rows, each in metrics order."""
    references = results["reference_rows"]
    return [n for n in results["metrics"] if n not in references] + [n for n in results["metrics"] if n in references]


def target_limit(target: dict) -> str:
    """The limit with its comparison when the target records one (`op`)."""
    op = {"<=": "≤ ", ">=": "≥ "}.get(target.get("op"), "")
    return op + format_plain(target["limit"])


def target_verdict(target: dict) -> str:
    return {True: "met", False: "MISSED", None: "not judged"}[target["met"]]


def summary_table(results: dict) -> str:
    """Fixed-width tables for a terminal: one block per set, then the targets."""
    references = results["reference_rows"]
    names = row_names(results)
    labels = [f"{n} (ref)" if n in references else n for n in names]
    lines = [f"{results['dataset']} | forget: {', '.join(results['forget_classes'])} | "
             f"{results['task']['name']} {results['task']['ratio']:g} | seed {results['seed']} | "
             f"{results.get('split', {}).get('scored', 'test')} split"]
    for set_name in SETS:
        columns = [["model", *labels]]
        for metric in METRICS:
            columns.append([metric.header(set_name, short=True),
                            *(format_score(metric, results["metrics"][n][set_name],
                                           interval_of(results, n, set_name, "whole", metric.key)) for n in names)])
        info = results["sets"][set_name]
        sample = f", a sample of {info['sampled_from']} (--max-eval-images)" if "sampled_from" in info else ""
        if info.get("interval_images", info["count"]) < info["count"]:
            sample += f"; KID and ± from a sample of {info['interval_images']}"
        lines += ["", f"{set_name} set ({info['count']} images{sample})"]
        lines += _aligned(columns, rule=True)
    hole = results.get("hole_metrics") or {}
    hole_names = [n for n in names if n in hole]
    for set_name in SETS if hole_names else ():
        columns = [["model", *(f"{n} (ref)" if n in references else n for n in hole_names)]]
        for metric in HOLE_METRICS:
            columns.append([metric.header(set_name, short=True),
                            *(format_score(metric, hole[n].get(set_name) or {},
                                           interval_of(results, n, set_name, "hole", metric.key)) for n in hole_names)])
        lines += ["", f"{set_name} set, hidden region only"]
        lines += _aligned(columns)
    if results.get("intervals"):
        lines += ["", "± : 95 % bootstrap interval over the test images, of each model alone (the report compares "
                  "two models by the interval of their paired difference)"]
    damage = results_collateral(results)
    if damage:
        lines += ["", "worst retain class (FID ratio to the original):"]
        for row, entry in damage.items():
            worst = next((e for e in entry["classes"] if e["class"] == entry["worst"]), None)
            shown = f"{worst['class']} {format_change('fid', worst['fid'])}" if worst else MISSING
            lines.append(f"  {row}: {shown}")
    if results.get("targets"):
        lines += ["", "targets:"]
        for target in results["targets"]:
            lines.append(f"  {target['name']}: {format_plain(target['value'])} vs limit {target_limit(target)}"
                         f" — {target_verdict(target)}")
        # a target named "original ..." judges the model unlearned from (competence), not the unlearning
        judged = [t for t in results["targets"] if t["met"] is not None and not t["name"].startswith("original ")]
        competence = [t for t in results["targets"] if t["met"] is not None and t["name"].startswith("original ")]
        lines.append(f"targets met: {sum(t['met'] for t in judged)} of {len(judged)}"
                     + (f" (and the original's competence checks: {sum(t['met'] for t in competence)} of "
                        f"{len(competence)})" if competence else ""))
    return "\n".join(lines)


def _aligned(columns: list[list[str]], rule: bool = False) -> list[str]:
    """Columns (header first) as text rows: the first left-aligned, the rest right-aligned; `rule` underlines the header."""
    widths = [max(len(cell) for cell in column) for column in columns]
    lines = []
    for i in range(len(columns[0])):
        cells = [columns[0][i].ljust(widths[0])]
        cells += [column[i].rjust(width) for column, width in zip(columns[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
        if rule and i == 0:
            lines.append("-" * len(lines[-1]))
    return lines
