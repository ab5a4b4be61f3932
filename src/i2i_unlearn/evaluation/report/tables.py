"""The tables of results.json and of a front.json, as document Tables (cells of plain text and style marks)."""
from __future__ import annotations

import json

from i2i_unlearn.evaluation.report.document import Cell, Table
from i2i_unlearn.evaluation.results import (CLASS_METRICS, HOLE_METRICS, METRICS, MISSING, PAIRED_SCORES, SETS,
                                            format_change, format_number, format_plain, format_score, interval_of,
                                            paired_differences, results_collateral, row_names, target_limit,
                                            target_verdict)

MAX_CLASSES_LISTED = 12


def class_list(names: list[str]) -> str:
    if len(names) <= MAX_CLASSES_LISTED:
        return ", ".join(names)
    return ", ".join(names[:MAX_CLASSES_LISTED]) + f", … ({len(names)} classes)"


def setting_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _scores_table(results: dict, set_name: str, metrics, names: list[str], scores_of, view: str,
                  caption: str) -> Table:
    """One set's scores of `metrics` for the rows `names` (models, then reference rows: a rule above the first);
    the header cells carry each metric's arrow on that set. scores_of(name): that row's scores."""
    references = results["reference_rows"]
    first_reference = next((name for name in names if name in references), None)  # a rule goes above it
    header = ["model", *(Cell(metric.label, arrow=metric.arrow(set_name)) for metric in metrics)]
    rows, row_styles = [], []
    for name in names:
        scores = scores_of(name)
        rows.append([f"{name} (ref)" if name in references else name,
                     *(format_score(m, scores, interval_of(results, name, set_name, view, m.key)) for m in metrics)])
        row_styles.append("ref first-ref" if name == first_reference else "ref" if name in references else "")
    return Table(header, rows, caption, row_styles=row_styles)


def results_table(results: dict, set_name: str) -> Table:
    """One set's metrics table."""
    info = results["sets"][set_name]
    caption = f"{set_name.capitalize()} set — {info['count']} test images of {class_list(info['classes'])}"
    if "sampled_from" in info:   # --max-eval-images: a quick look
        caption += f" (a sample: evenly spread over the {info['sampled_from']} of the set)"
    if info.get("interval_images", info["count"]) < info["count"]:   # a set above evaluate's interval_images
        caption += (f"; KID, per-class FID and the intervals from a seeded sample of {info['interval_images']} of "
                    "them (wider than the whole set's)")
    return _scores_table(results, set_name, METRICS, row_names(results),
                         lambda name: results["metrics"][name][set_name], "whole", caption)


def hole_table(results: dict, set_name: str) -> Table:
    """One set's hidden-region table: the rows that have hole metrics."""
    hole = results.get("hole_metrics") or {}
    return _scores_table(results, set_name, HOLE_METRICS, [name for name in row_names(results) if name in hole],
                         lambda name: hole[name].get(set_name) or {}, "hole",
                         f"{set_name.capitalize()} set, hidden region only")


def paired_tables(results: dict) -> tuple[str, list[Table]] | None:
    """Per set, each model's scores minus the original's with the 95 % interval of the paired difference, a
    verdict after each judged one (worse: marked missed)."""
    paired = paired_differences(results)
    if paired is None:
        return None
    base, rows_of = paired
    tables = []
    for set_name in SETS:
        scores = [(view, metric) for view, metric in PAIRED_SCORES
                  if any((set_name, view, metric.key) in row for row in rows_of.values())]
        if not scores:
            continue
        header = ["model", *(Cell(("hole " if view == "hole" and not metric.label.startswith("hole") else "")
                                  + metric.label, arrow=metric.arrow(set_name)) for view, metric in scores)]
        rows = []
        for name, row in rows_of.items():
            cells = [name]
            for view, metric in scores:
                entry = row.get((set_name, view, metric.key))
                if entry is None:
                    cells.append(MISSING)
                    continue
                text = (f"{entry['difference']:+.{metric.digits}f} ± "
                        f"{format_number(entry['hw'], metric.digits) if entry['hw'] is not None else MISSING}")
                if entry["verdict"]:
                    text += f" ({entry['verdict']})"
                cells.append((text, "missed") if entry["verdict"] == "worse" else text)
            rows.append(cells)
        tables.append(Table(header, rows, f"{set_name.capitalize()} set: minus {base}"))
    return base, tables


def collateral_tables(results: dict) -> tuple[Table, list[Table]] | None:
    """The table naming each model's worst retain class, and one table per score of the per-retain-class
    changes, a column per model (narrow enough for the page with any number of models)."""
    damage = results_collateral(results)
    if not damage:
        return None
    models = list(damage)
    classes = list(dict.fromkeys(e["class"] for entry in damage.values() for e in entry["classes"]))
    tables = []
    for key, (label, _, _) in CLASS_METRICS.items():
        rows = []
        for name in classes:
            row = [name]
            for model in models:
                change = next((e for e in damage[model]["classes"] if e["class"] == name), None)
                cell = format_change(key, change[key]) if change else MISSING
                row.append((cell, "missed") if change is not None and change[key]["verdict"] == "worse" else cell)
            rows.append(row)
        caption = f"{label}: ratio to the original" if key == "fid" else f"{label}: change from the original"
        tables.append(Table(["retain class", *models], rows, caption))
    worst_rows = []
    for model in models:
        worst = next((e for e in damage[model]["classes"] if e["class"] == damage[model]["worst"]), None)
        worst_rows.append([model, worst["class"] if worst else MISSING,
                           format_change("fid", worst["fid"]) if worst else MISSING])
    return Table(["model", "worst retain class", "its FID ratio"], worst_rows), tables


def targets_table(results: dict) -> Table:
    styles = {True: "met", False: "missed", None: "unjudged"}
    rows = [[target["name"], format_plain(target["value"]), target_limit(target),
             (target_verdict(target), styles[target["met"]])] for target in results["targets"]]
    return Table(["target", "value", "limit", "result"], rows)


def instrument_table(check: dict, forget_classes: list[str]) -> Table:
    """Per fill, the evaluator's share of each class: forget classes marked, each fill's largest share strong."""
    classes = list(dict.fromkeys(c for shares in check["shares"].values() for c in shares))
    header = ["fill", *((c, "forget") if c in forget_classes else c for c in classes)]
    rows = []
    for fill, shares in check["shares"].items():
        largest = max(shares.values(), default=None)
        row = [fill]
        for name in classes:
            share = shares.get(name)
            styles = []
            if name in forget_classes:
                styles.append("forget")
            if share is not None and share == largest:
                styles.append("strong")
            row.append((MISSING if share is None else f"{share * 100:.1f}%", " ".join(styles)))
        rows.append(row)
    return Table(header, rows)


def instrument_intro(check: dict) -> str:
    task = check["task"]
    if isinstance(task, dict) and {"name", "ratio"} <= task.keys():
        task = f"{task['name']}, ratio {task['ratio']:g}"
    return f"Task {setting_text(task)}; {setting_text(check['count'])} test images per fill."


def front_table(front: dict) -> Table:
    header = ["retain budget", "kept step", f"retain {front['metric']} (x original)",
              f"forget {front['forget_metric']} (x original)", "within budget", "started from"]
    rows = [[f"{m['retain_budget']:g}", str(m["chosen"]["step"]), f"{m['chosen']['retain_ratio']:.3f}",
             f"{m['chosen']['forget_ratio']:.3f}", ("yes", "met") if m["in_budget"] else ("no", "missed"),
             m["warm_start"] or "the original"] for m in front["members"]]
    return Table(header, rows)


def settings_tables(results: dict) -> list[tuple[str, Table]]:
    """(title, table) for everything that changes a number; tables of text, not numbers."""
    evaluator = results["evaluator"]
    accuracy = evaluator.get("test_accuracy")
    run = [["dataset", results["dataset"]], ["forget classes", ", ".join(results["forget_classes"])],
           ["task", f"{results['task']['name']}, ratio {results['task']['ratio']:g}"],
           ["seed", str(results["seed"])], ["created", results["created"]],
           ["schema version", str(results["schema_version"])]]
    sets = [[name, str(info["count"]) + (f" of {info['sampled_from']} (a sample)" if "sampled_from" in info else ""),
             (", ".join(info["classes"]), "text"), (info["ids_sha256"], "hash")]
            for name, info in results["sets"].items()]
    evaluator_rows = [["name", evaluator["name"]], ["kind", evaluator["kind"]],
                      ["sha256", (evaluator["sha256"], "hash")],
                      ["test accuracy", MISSING if accuracy is None else f"{accuracy * 100:.1f}%"]]
    if evaluator.get("class_names"):
        evaluator_rows.append(["classes", (", ".join(evaluator["class_names"]), "text")])
    models = [[name, info.get("method") or MISSING, info["family"], (info["dir"] or MISSING, "text"),
               (info["weights_sha256"] or MISSING, "hash")] for name, info in results["models"].items()]
    settings = [[key, (setting_text(value), "text")] for key, value in results["settings"].items()]
    versions = [[name, version] for name, version in results["versions"].items()]
    tables = [("Run", ["setting", "value"], run),
              ("Test sets", ["set", "images", "classes", "image ids sha256"], sets),
              ("Evaluator", ["field", "value"], evaluator_rows),
              ("Models", ["model", "method", "family", "directory", "weights sha256"], models),
              ("Settings", ["setting", "value"], settings),
              ("Versions", ["package", "version"], versions)]
    return [(title, Table(header, rows, numbers=False)) for title, header, rows in tables if rows]
