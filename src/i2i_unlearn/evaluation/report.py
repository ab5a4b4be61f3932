"""report.html and report.md from results.json.

The HTML is one self-contained file (images inlined as data URIs, no external CSS, scripts,
fonts or URLs) so it opens offline anywhere. Every string taken from results.json is escaped:
class and model names are user input.
"""
from __future__ import annotations

import base64
import html
import json
import re
import shutil
from pathlib import Path
from urllib.parse import quote

from i2i_unlearn.checkpoints import atomic_write, write_text_atomic
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.audit.relearn import RETURN_FRACTION, relearning_paces
from i2i_unlearn.evaluation.results import (CLASS_METRICS, HOLE_METRICS, METRICS, MISSING, SETS, format_change,
                                            format_plain, format_score, interval_of, load_results,
                                            results_collateral, row_names, target_limit, target_verdict)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE


def _read_record(path: Path, kind: str, described: str) -> dict:
    """A JSON record of `kind` (front, audit), or the one-line error a wrong file gets."""
    from i2i_unlearn.checkpoints import read_json
    if not path.is_file():
        raise UserError(f"{kind} file not found: {path}")
    record = read_json(path)
    if not isinstance(record, dict) or record.get("kind") != kind:
        raise UserError(f"{path} is not {described}")
    return record
GRID_CAPTION = "rows: input (hidden region tinted), each model's output, ground truth."
CLASS_GRID_CAPTION = ("one row per class (its first test image); columns: input (hidden region tinted), each "
                      "model's output in the order of the tables, ground truth.")
TSNE_CAPTION = "T-SNE of the evaluator's embeddings of each model's outputs, forget vs retain."
LEGEND = ("↑ higher is better on that set, ↓ lower is better, no arrow: neither. "
          "KID is mean ± std over subsets; – means not measured; rows marked (ref) are references, not models.")
INSTRUMENT_NOTE = ("A classifier evaluator can be biased by the very outputs unlearning produces (in a trial, "
                   "noise-textured fills were called one animal whatever the image), so this table shows what it "
                   "predicts for real test images whose hidden region is filled with noise, flat grey or the mean "
                   "image: a trustworthy instrument gives the forget classes no large share.")
INSTRUMENT_KEY_HTML = "Forget classes are shaded; each fill's largest share is bold."
INSTRUMENT_KEY_MD = "Each fill's largest share is bold."
INTERVAL_NOTE = ("± is a 95 % bootstrap interval over the test images (settings: bootstrap): a difference between "
                 "two models inside their combined interval is a tie, not a win.")
HOLE_NOTE = ("The same scores on the hidden region alone, since the visible frame dominates whole-image numbers: "
             "each image is cropped to the bounding box of its hidden pixels and resized to the evaluator's input "
             "size (settings: hole_view). The ground-truth row shows what real hidden regions score.")
COLLATERAL_NOTE = ("Each retain class alone, against the original: FID as a ratio (above 1 is damage), similarity "
                   "and the evaluator's recognition of that class as differences (below 0 is damage). (tie): inside "
                   "the combined bootstrap interval.")
FRONT_NOTE = ("What each retain budget buys (`unlearn --front`, scored on validation images while unlearning): per "
              "budget, the checkpoint the run kept, its retain and forget scores as multiples of the original's (lower "
              "is better on both).")
AUDIT_NOTE = ("Does the forgetting survive an attacker (`i2i-unlearn audit`)? Membership inference scores each image "
              "by how well a model restores its hidden region (the family's own loss, under several masks) and calls "
              "the best-restored images members: the forgotten training images, to be told from never-seen images of "
              "the same classes. AUC 0.5: indistinguishable. Even a model that never saw the forgotten images need not "
              "score 0.5 (the two sets can differ in difficulty), so the target is the retrained model's AUC, not 0.5. "
              "The calibrated AUC scores each image by its error relative to the reference model's on the same image "
              "(difficulty calibration, as in LiRA), so an image that is easy for every model no longer looks like a "
              "member. TPR at 1 % or 5 % FPR: the share of forgotten images caught while calling at most that share of "
              "never-seen images members.")
TELL_NOTE = ("The tell: do a model's outputs on forget inputs give the forgetting away? Forget recognition: the "
             "evaluator's share of those outputs in a forget class. No-object share: outputs it calls \"no object\" "
             "(its class for noise, grey and mean-image fills); the low-confidence share (top class probability "
             "below a threshold) stands in for an evaluator without that class. The probe: the cross-validated "
             "accuracy (± its spread over the folds) of a linear classifier on the evaluator's features telling a "
             "model's outputs from the probe reference's for the same inputs: 0.5 means indistinguishable, 1 a "
             "giveaway. Forget FID: those outputs against the real images.")
RELEARN_NOTE = ("Relearning: a copy of each model is fine-tuned on a few forget-class training images (the same "
                "images, masks, order and learning rate for every model) and its forget-class recognition on "
                "never-seen forget-class images measured after each number of steps. A model whose recognition "
                "comes back much sooner than the retrained model's hid the knowledge instead of removing it. "
                f"Steps back to the original's: the first step whose recognition is at least {RETURN_FRACTION:.0%} "
                "of the original's "
                "before relearning; it tells hidden from removed knowledge where half the original's does not (a "
                "retrained model whose visible frame keeps the class recognisable starts above half). Speed-up: "
                "the reference's steps to half the original's recognition over this model's (above 1: relearns "
                "faster; – when either starts there already or never gets there).")
ROC_CAPTION = ("ROC curves of the membership attack (left) and, where there is a reference, of the attack calibrated "
               "by it (right); the dotted diagonal is chance.")
RELEARN_CAPTION = "Forget-class recognition while relearning, per variant; the dotted line is half the original's."
RELEARN_VARIANTS = {"whole": "the whole model fine-tuned",
                    "decoder-frozen": "the encoder fine-tuned, the decoder frozen"}
AUDIT_FIGURES = ("roc", "relearn", "grid_forget")   # the figures `audit` writes, in report order
MAX_CLASSES_LISTED = 12

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #222; max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
h3 { font-size: 1em; margin: 1.2em 0 .3em; }
.sub, .note, figcaption { color: #555; }
.note { max-width: 85ch; }
/* each table in a box of its own that scrolls sideways: a table wider than the page stays inside it */
.table-box { overflow-x: auto; margin: .4em 0 1.4em; }
/* narrow tables of one kind in a row, wrapping to the next line where the page is too narrow */
.side-by-side { display: flex; flex-wrap: wrap; gap: 0 2.5em; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding-bottom: .3em; }
th, td { padding: .25em .75em; text-align: left; white-space: nowrap; }
table.numbers th:not(:first-child), table.numbers td:not(:first-child) { text-align: right; }
td.text { white-space: normal; overflow-wrap: anywhere; }
thead th { border-top: 2px solid #222; border-bottom: 1px solid #222; font-weight: 600; vertical-align: bottom; }
/* both sets' tables get the same <col> widths (the widest cell of either), so their columns line up where the page
   has room for them; on a narrower page the model names wrap first, but a column never gets narrower than its
   numbers (they never spill into the next column): the table scrolls in its box */
table.results { width: 100%; }
table.results th, table.results td:first-child { white-space: normal; }
table.results th, table.results td { padding: .25em .6em; }
tbody tr:last-child td { border-bottom: 2px solid #222; }
tr.ref td { color: #666; font-style: italic; }
tr.first-ref td { border-top: 1px solid #bbb; }
.forget { background: #fdeceb; }
.strong { font-weight: 700; }
.met { color: #1a7f37; font-weight: 600; }
.missed { color: #c62828; font-weight: 600; }
.unjudged { color: #777; }
.hash { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { font-size: .9em; margin-top: .3em; }
"""


# --- figures ---

def _image_files(results: dict, folder: Path) -> dict[str, Path]:
    """Figure name -> checked PNG path beside results.json."""
    files = {}
    for key, name in results["images"].items():
        if Path(name).name != name:  # only files beside results.json, never a path elsewhere
            raise UserError(f"images.{key}: {name!r} is not a file name beside results.json")
        path = folder / name
        if not path.is_file():
            raise UserError(f"image {key!r} not found: {path}")
        if not _is_png(path):
            raise UserError(f"image {key!r} is not a PNG file: {path}")
        files[key] = path
    return files


def _figure_sections(image_keys) -> list[tuple[str, list[tuple[str, str]]]]:
    """(section title, [(image key, caption)]) in report order: grids, T-SNE, any other figure."""
    grids = [(k, f"{k.removeprefix('grid_').removesuffix('_classes').capitalize()} set — "
                 f"{CLASS_GRID_CAPTION if k.endswith('_classes') else GRID_CAPTION}")
             for k in image_keys if k.startswith("grid_")]
    tsne = [(k, TSNE_CAPTION) for k in image_keys if k == "tsne"]
    others = [(k, k) for k in image_keys if not k.startswith("grid_") and k != "tsne"]
    sections = [("Outputs", grids), ("T-SNE", tsne), ("Other figures", others)]
    return [(title, figures) for title, figures in sections if figures]


# --- content shared by both formats: tables as header + rows of cells ---
# A cell is plain text, or (text, style) with style one of: strong, forget, met, missed, unjudged, hash, text.

def _class_list(names: list[str]) -> str:
    if len(names) <= MAX_CLASSES_LISTED:
        return ", ".join(names)
    return ", ".join(names[:MAX_CLASSES_LISTED]) + f", … ({len(names)} classes)"


def _results_table(results: dict, set_name: str, space: str = " ") -> tuple[str, list, list, list[str]]:
    """Caption, header, rows and row styles of one set's metrics table (space: between label and arrow)."""
    info = results["sets"][set_name]
    caption = f"{set_name.capitalize()} set — {info['count']} test images of {_class_list(info['classes'])}"
    header = ["model", *(metric.header(set_name, space=space) for metric in METRICS)]
    references = results["reference_rows"]
    names = row_names(results)
    first_reference = next((name for name in names if name in references), None)  # a rule goes above it
    rows, row_styles = [], []
    for name in names:
        scores = results["metrics"][name][set_name]
        rows.append([f"{name} (ref)" if name in references else name,
                     *(format_score(m, scores, interval_of(results, name, set_name, "whole", m.key)) for m in METRICS)])
        row_styles.append("ref first-ref" if name == first_reference else "ref" if name in references else "")
    return caption, header, rows, row_styles


def _hole_table(results: dict, set_name: str, space: str = " ") -> tuple[str, list, list, list[str]]:
    """Caption, header, rows and row styles of one set's hidden-region table."""
    hole = results.get("hole_metrics") or {}
    references = results["reference_rows"]
    names = [name for name in row_names(results) if name in hole]
    first_reference = next((name for name in names if name in references), None)
    header = ["model", *(metric.header(set_name, space=space) for metric in HOLE_METRICS)]
    rows, row_styles = [], []
    for name in names:
        scores = hole[name].get(set_name) or {}
        rows.append([f"{name} (ref)" if name in references else name,
                     *(format_score(m, scores, interval_of(results, name, set_name, "hole", m.key))
                       for m in HOLE_METRICS)])
        row_styles.append("ref first-ref" if name == first_reference else "ref" if name in references else "")
    return f"{set_name.capitalize()} set, hidden region only", header, rows, row_styles


def _collateral_tables(results: dict) -> tuple[list[tuple[str, list, list]], list, list] | None:
    """One (caption, header, rows) per score of the per-retain-class changes, a column per model (narrow
    enough for the page with any number of models), and (header, rows) naming each model's worst class."""
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
        tables.append((caption, ["retain class", *models], rows))
    worst_rows = []
    for model in models:
        worst = next((e for e in damage[model]["classes"] if e["class"] == damage[model]["worst"]), None)
        worst_rows.append([model, worst["class"] if worst else MISSING,
                           format_change("fid", worst["fid"]) if worst else MISSING])
    return tables, ["model", "worst retain class", "its FID ratio"], worst_rows


def _targets_table(results: dict) -> tuple[list, list]:
    styles = {True: "met", False: "missed", None: "unjudged"}
    rows = [[target["name"], format_plain(target["value"]), target_limit(target),
             (target_verdict(target), styles[target["met"]])] for target in results["targets"]]
    return ["target", "value", "limit", "result"], rows


def _instrument_table(check: dict, forget_classes: list[str]) -> tuple[list, list]:
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
    return header, rows


def _instrument_intro(check: dict) -> str:
    task = check["task"]
    if isinstance(task, dict) and {"name", "ratio"} <= task.keys():
        task = f"{task['name']}, ratio {task['ratio']:g}"
    return f"Task {_setting_text(task)}; {_setting_text(check['count'])} test images per fill."


def load_front(front_path: str | Path) -> tuple[dict, Path]:
    """A front.json written by `unlearn --front`, and its checked plot beside it."""
    from i2i_unlearn.runs import FRONT_PLOT
    front_path = Path(front_path)
    front = _read_record(front_path, "front", "a front.json written by `unlearn --front`")
    plot = front_path.parent / FRONT_PLOT
    if not plot.is_file() or not _is_png(plot):
        raise UserError(f"the front's plot {plot} is missing or not a PNG file")
    return front, plot


def _front_table(front: dict) -> tuple[list, list]:
    header = ["retain budget", "kept step", f"retain {front['metric']} (x original)",
              f"forget {front['forget_metric']} (x original)", "within budget", "started from"]
    rows = [[f"{m['retain_budget']:g}", str(m["chosen"]["step"]), f"{m['chosen']['retain_ratio']:.3f}",
             f"{m['chosen']['forget_ratio']:.3f}", ("yes", "met") if m["in_budget"] else ("no", "missed"),
             m["warm_start"] or "the original"] for m in front["members"]]
    return header, rows


def load_audit(audit_path: str | Path) -> tuple[dict, dict[str, Path]]:
    """An audit.json written by `audit`, and its checked figures beside it (figure key -> path)."""
    audit_path = Path(audit_path)
    audit = _read_record(audit_path, "audit", "an audit.json written by `i2i-unlearn audit`")
    if audit.get("schema_version") != 1:
        raise UserError(f"{audit_path}: schema_version {audit.get('schema_version')!r}; this report reads version 1")
    missing = [key for key in ("forget", "membership", "tell", "images") if not isinstance(audit.get(key), dict)]
    if missing:
        raise UserError(f"{audit_path} has no {', '.join(missing)}: not an audit.json written by `i2i-unlearn audit`")
    images = audit["images"]
    absent = [key for key in ("roc", "grid_forget") if key not in images]
    if absent:
        raise UserError(f"{audit_path} names no {' or '.join(absent)} figure")
    files = {}
    for key in AUDIT_FIGURES:
        if key not in images:
            continue
        name = images[key]
        if not isinstance(name, str) or Path(name).name != name:
            raise UserError(f"{audit_path}: images.{key}: {name!r} is not a file name beside audit.json")
        path = audit_path.parent / name
        if not path.is_file():
            raise UserError(f"the audit's figure {key!r} not found: {path}")
        if not _is_png(path):
            raise UserError(f"the audit's figure {key!r} is not a PNG file: {path}")
        files[key] = path
    if audit.get("relearning") and audit["relearning"].get("models"):
        relearning = audit["relearning"]
        relearning.setdefault("reference", audit.get("tell_reference"))   # audits before the return pace
        relearning_paces(relearning, next(iter(relearning.get("config", {}).get("variants") or ["whole"])))
    return audit, files


def _number(value, digits: int = 3) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def _audit_title(audit: dict) -> str:
    """The forget request an audit is of: its classes, or its file list's size and classes."""
    forget = audit["forget"]
    classes = _class_list(forget.get("forget_classes") or [])
    if forget.get("kind") == "files":
        total = forget["members"].get("forgotten_total") or forget["members"]["count"]
        return f"Forget {total} images (of {classes})"
    return f"Forget {classes}"


def _audit_titles(audits: list[dict]) -> list[str]:
    """Each audit's title; audits of the same request are numbered."""
    titles = [_audit_title(audit) for audit in audits]
    counts = {title: titles.count(title) for title in titles}
    seen: dict[str, int] = {}
    numbered = []
    for title in titles:
        seen[title] = seen.get(title, 0) + 1
        numbered.append(f"{title} ({seen[title]})" if counts[title] > 1 else title)
    return numbered


def _audit_intro(audit: dict) -> str:
    models = ", ".join(f"{name} ({', '.join(x for x in (info.get('family'), info.get('method')) if x)})"
                       for name, info in audit["models"].items())
    evaluator = (audit.get("evaluator") or {}).get("name") or MISSING
    seed = (audit.get("settings") or {}).get("seed")
    parts = [audit.get("dataset") or MISSING, f"models: {models}", f"evaluator {evaluator}"]
    if seed is not None:
        parts.append(f"seed {seed}")
    if audit.get("created"):
        parts.append(f"created {audit['created']}")
    return " · ".join(parts)


def _reference_label(name: str, reference: str | None) -> str:
    return f"{name} (reference)" if name == reference else name


def _membership_table(audit: dict) -> tuple[str, list, list]:
    """Caption, header and rows: per model the attack's AUC and TPRs, the calibrated AUC and the AUC's
    difference from the reference model's (the target)."""
    forget, reference = audit["forget"], audit.get("reference")
    models = audit["membership"]["models"]
    levels = (audit.get("settings") or {}).get("fpr_levels") or [0.01, 0.05]
    header = ["model", "AUC", *(f"TPR at {level * 100:g} % FPR" for level in levels), "calibrated AUC"]
    reference_auc = models[reference]["attack"]["auc"] if reference in models else None
    if reference_auc is not None:
        header.append(f"AUC − {reference}'s")
    rows = []
    for name, entry in models.items():
        attack, calibrated = entry["attack"], entry.get("calibrated")
        row = [_reference_label(name, reference), _number(attack["auc"]),
               *(_number(attack.get(f"tpr_at_{level:g}_fpr")) for level in levels),
               _number(calibrated["auc"] if calibrated else None)]
        if reference_auc is not None:
            row.append(MISSING if name == reference else f"{attack['auc'] - reference_auc:+.3f}")
        rows.append(row)
    members, non_members = forget["members"], forget["non_members"]
    caption = (f"Membership inference: {members['count']} forgotten training images vs {non_members['count']} "
               f"never-seen {forget.get('non_member_split', 'test')} images of "
               f"{_class_list(non_members.get('classes') or forget.get('forget_classes') or [])}; calibrated "
               f"against {reference or 'no reference'}")
    return caption, header, rows


def _tell_table(audit: dict) -> tuple[str, list, list]:
    tell = audit["tell"]
    reference = tell.get("probe_reference", audit.get("tell_reference"))
    threshold = tell.get("low_confidence_threshold")
    header = ["model", "forget recognition", "no-object share", "low-confidence share",
              f"probe vs {reference}" if reference else "probe", "forget FID"]
    rows = []
    for name, entry in tell["models"].items():
        probe = entry.get("probe_vs_reference")
        probe_cell = MISSING if not probe else (
            f"{probe['accuracy']:.3f} ± {probe['accuracy_std']:.3f}" if probe.get("accuracy_std") is not None
            else _number(probe["accuracy"]))
        rows.append([_reference_label(name, reference), _number(entry.get("forget_recognition")),
                     _number(entry.get("no_object_share")), _number(entry.get("low_confidence_share")), probe_cell,
                     _number(entry.get("forget_fid"), 2)])
    task = tell.get("task") or {}
    caption = f"The tell: outputs for {tell.get('count', MISSING)} forget inputs, {tell.get('inputs', MISSING)}"
    if {"name", "ratio"} <= task.keys():
        caption += f"; task {task['name']}, ratio {task['ratio']:g}"
    if threshold is not None:
        caption += f"; low confidence: top class probability below {threshold:g}"
    return caption, header, rows


def _relearn_tables(audit: dict) -> list[tuple[str, list, list]]:
    """(caption, header, rows) per relearning variant: recognition at each measured step, steps to half
    the original's recognition, speed-up against the reference."""
    relearning = audit.get("relearning")
    if not relearning or not relearning.get("models"):
        return []
    config = relearning.get("config") or {}
    half, original = relearning.get("half_original_recognition"), relearning.get("original")
    reference = audit.get("tell_reference")
    variants = list(dict.fromkeys(v for entry in relearning["models"].values() for v in entry["variants"]))
    tables = []
    for variant in variants:
        entries = {name: entry["variants"][variant] for name, entry in relearning["models"].items()
                   if variant in entry["variants"]}
        steps = sorted({point["step"] for result in entries.values() for point in result["curve"]})
        header = ["model", *(f"step {step}" for step in steps), "steps to half the original's",
                  "steps back to the original's"]
        if reference is not None:
            header.append(f"speed-up vs {reference}")
        rows = []
        for name, result in entries.items():
            at = {point["step"]: point.get("recognition") for point in result["curve"]}
            never = f"> {config.get('steps', steps[-1])}"
            reached, back = result.get("steps_to_half_original"), result.get("steps_to_original")
            row = [_reference_label(name, reference), *(_number(at.get(step)) for step in steps),
                   MISSING if half is None else str(reached) if reached is not None else never,
                   MISSING if half is None else str(back) if back is not None else never]
            if reference is not None:
                speedup = result.get("speedup_vs_reference")
                row.append(MISSING if speedup is None else f"{speedup:.2f}x")
            rows.append(row)
        trained = RELEARN_VARIANTS.get(variant, variant)
        details = ", ".join(x for x in (f"{config['images']} images" if "images" in config else "",
                                        f"lr {config['lr']:g}" if "lr" in config else "",
                                        f"batch {config['batch_size']}" if "batch_size" in config else "") if x)
        caption = (f"Relearning, {trained}" + (f" ({details})" if details else "") + ": forget-class recognition "
                   "after each number of steps; half the original's" + (f" ({original})" if original else "")
                   + f": {_number(half)}; back to the original's: {_number(relearning.get('original_return_level'))}")
        tables.append((caption, header, rows))
    return tables


def _audit_figures(audit: dict, keys) -> list[tuple[str, str]]:
    """(figure key, caption) of an audit's figures, in report order."""
    grid = f"Forget inputs, {audit['tell'].get('inputs', MISSING)}, the same for every model — {GRID_CAPTION}"
    captions = {"roc": ROC_CAPTION, "relearn": RELEARN_CAPTION, "grid_forget": grid}
    return [(key, captions[key]) for key in AUDIT_FIGURES if key in keys]


def _audit_names(audits: list[tuple[dict, dict[str, Path]]], out_dir: Path) -> list[dict[str, str]]:
    """Per audit, figure key -> its file name in out_dir: its own name when the audit is in out_dir, else
    audit-<name> (audit-<k>-<name> for several audits), so no two figures share a name."""
    names = []
    for k, (_, files) in enumerate(audits):
        prefix = "audit-" if len(audits) == 1 else f"audit-{k + 1}-"
        in_place = {path.parent.resolve() for path in files.values()} == {out_dir.resolve()}
        names.append({key: path.name if in_place else prefix + path.name for key, path in files.items()})
    return names


def _setting_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _settings_tables(results: dict) -> list[tuple[str, list, list]]:
    """(title, header, rows) for everything that changes a number."""
    evaluator = results["evaluator"]
    accuracy = evaluator.get("test_accuracy")
    run = [["dataset", results["dataset"]], ["forget classes", ", ".join(results["forget_classes"])],
           ["task", f"{results['task']['name']}, ratio {results['task']['ratio']:g}"],
           ["seed", str(results["seed"])], ["created", results["created"]],
           ["schema version", str(results["schema_version"])]]
    sets = [[name, str(info["count"]), (", ".join(info["classes"]), "text"), (info["ids_sha256"], "hash")]
            for name, info in results["sets"].items()]
    evaluator_rows = [["name", evaluator["name"]], ["kind", evaluator["kind"]],
                      ["sha256", (evaluator["sha256"], "hash")],
                      ["test accuracy", MISSING if accuracy is None else f"{accuracy * 100:.1f}%"]]
    if evaluator.get("class_names"):
        evaluator_rows.append(["classes", (", ".join(evaluator["class_names"]), "text")])
    models = [[name, info.get("method") or MISSING, info["family"], (info["dir"] or MISSING, "text"),
               (info["weights_sha256"] or MISSING, "hash")] for name, info in results["models"].items()]
    settings = [[key, (_setting_text(value), "text")] for key, value in results["settings"].items()]
    versions = [[name, version] for name, version in results["versions"].items()]
    tables = [("Run", ["setting", "value"], run),
              ("Test sets", ["set", "images", "classes", "image ids sha256"], sets),
              ("Evaluator", ["field", "value"], evaluator_rows),
              ("Models", ["model", "method", "family", "directory", "weights sha256"], models),
              ("Settings", ["setting", "value"], settings),
              ("Versions", ["package", "version"], versions)]
    return [(title, header, rows) for title, header, rows in tables if rows]


# --- HTML ---

def _html_cell(tag: str, cell) -> str:
    text, style = cell if isinstance(cell, tuple) else (cell, "")
    attribute = f' class="{html.escape(style)}"' if style else ""
    return f"<{tag}{attribute}>{html.escape(text)}</{tag}>"


def _cell_text(cell) -> str:
    return cell[0] if isinstance(cell, tuple) else cell


def _column_widths(tables: list[tuple[list, list]]) -> list[int]:
    """One width (in ch) per column that fits every cell of that column in all of `tables` (header, rows): the
    longest cell, or a header's longest word (headers wrap at spaces, not at the no-break space before an arrow),
    plus the cell padding. A digit is 1ch wide and most other characters are narrower, so the widths fit; tables
    given the same widths line up."""
    def fits(header: list, rows: list) -> list[int]:
        return [max([len(word) for word in _cell_text(cells[0]).split(" ")]
                    + [len(_cell_text(cell)) for cell in cells[1:]]) + 2 for cells in zip(header, *rows)]
    return [max(column) for column in zip(*(fits(header, rows) for header, rows in tables))]


def _html_table(header: list, rows: list, caption: str = "", row_styles: list[str] | None = None,
                style: str = "", widths: list[int] | None = None) -> str:
    """style "numbers": right-aligned columns after the first; "numbers results": also the results grid.
    `widths`: the columns' widths in ch (_column_widths). The table comes in a box that scrolls sideways."""
    lines = ['<div class="table-box">' + (f'<table class="{style}">' if style else "<table>")]
    if caption:
        lines.append(f"<caption>{html.escape(caption)}</caption>")
    if widths:
        lines.append("<colgroup>" + "".join(f'<col style="width: {width}ch">' for width in widths) + "</colgroup>")
    lines.append("<thead><tr>" + "".join(_html_cell("th", c) for c in header) + "</tr></thead><tbody>")
    for i, row in enumerate(rows):
        style = row_styles[i] if row_styles else ""
        opening = f'<tr class="{style}">' if style else "<tr>"
        lines.append(opening + "".join(_html_cell("td", c) for c in row) + "</tr>")
    lines.append("</tbody></table></div>")
    return "\n".join(lines)


def _html_figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _scored_split(results: dict) -> str:
    scored = results.get("split", {}).get("scored", "test")
    return "validation images (choosing knobs)" if scored == "val" else "held-out test images"


def _html_audits(audits: list[tuple[dict, dict[str, Path]]]) -> list[str]:
    e = html.escape
    parts = ["<h2>Audit</h2>", f'<p class="note">{e(AUDIT_NOTE)}</p>', f'<p class="note">{e(TELL_NOTE)}</p>']
    if any(audit.get("relearning") for audit, _ in audits):
        parts.append(f'<p class="note">{e(RELEARN_NOTE)}</p>')
    for (audit, files), title in zip(audits, _audit_titles([audit for audit, _ in audits])):
        parts += [f"<h3>{e(title)}</h3>", f'<p class="sub">{e(_audit_intro(audit))}</p>']
        caption, header, rows = _membership_table(audit)
        parts.append(_html_table(header, rows, caption, style="numbers"))
        caption, header, rows = _tell_table(audit)
        parts.append(_html_table(header, rows, caption, style="numbers"))
        for caption, header, rows in _relearn_tables(audit):
            parts.append(_html_table(header, rows, caption, style="numbers"))
        parts += [_html_figure(files[key], caption) for key, caption in _audit_figures(audit, files)]
    return parts


def render_html(results: dict, images: dict[str, Path], front: tuple[dict, Path] | None = None,
                audits: list[tuple[dict, dict[str, Path]]] = ()) -> str:
    """`audits`: (audit.json, figure key -> its PNG) each, shown in an Audit section."""
    e = html.escape
    title = f"Unlearning results: {results['dataset']}"
    parts = [f"<h1>{e(title)}</h1>",
             f'<p class="sub">Forget classes: {e(", ".join(results["forget_classes"]))} · '
             f'task {e(results["task"]["name"])}, ratio {results["task"]["ratio"]:g} · '
             f'seed {results["seed"]} · {e(_scored_split(results))} · created {e(results["created"])}</p>',
             "<h2>Results</h2>", f'<p class="note">{e(LEGEND)}</p>']
    if results.get("intervals"):
        parts.append(f'<p class="note">{e(INTERVAL_NOTE)}</p>')
    tables = [_results_table(results, set_name, space="\u00a0") for set_name in SETS]
    widths = _column_widths([(header, rows) for _, header, rows, _ in tables])
    for caption, header, rows, row_styles in tables:
        parts.append(_html_table(header, rows, caption, row_styles, style="numbers results", widths=widths))
    if results.get("hole_metrics"):
        parts += ["<h2>Hidden region only</h2>", f'<p class="note">{e(HOLE_NOTE)}</p>']
        for set_name in SETS:
            caption, header, rows, row_styles = _hole_table(results, set_name, space="\u00a0")
            parts.append(_html_table(header, rows, caption, row_styles, style="numbers"))
    collateral = _collateral_tables(results)
    if collateral:
        tables, worst_header, worst_rows = collateral
        parts += ["<h2>Collateral damage per retain class</h2>", f'<p class="note">{e(COLLATERAL_NOTE)}</p>',
                  _html_table(worst_header, worst_rows, style="numbers"), '<div class="side-by-side">',
                  *(_html_table(header, rows, caption, style="numbers") for caption, header, rows in tables), "</div>"]
    if results.get("targets"):
        parts += ["<h2>Targets</h2>", _html_table(*_targets_table(results), style="numbers")]
    if front:
        parts += ["<h2>Trade-off front</h2>", f'<p class="note">{e(FRONT_NOTE)}</p>',
                  _html_table(*_front_table(front[0]), style="numbers"), _html_figure(front[1], FRONT_NOTE)]
    if audits:
        parts += _html_audits(list(audits))
    for section, figures in _figure_sections(images):
        parts.append(f"<h2>{e(section)}</h2>")
        parts += [_html_figure(images[key], caption) for key, caption in figures]
    parts += ["<h2>Instrument check</h2>", f'<p class="note">{e(INSTRUMENT_NOTE)}</p>']
    check = results["instrument_check"]
    if check is None:
        parts.append('<p class="note">Not run: the evaluator has no classes.</p>')
    else:
        parts += [f'<p class="note">{e(_instrument_intro(check))} {e(INSTRUMENT_KEY_HTML)}</p>',
                  _html_table(*_instrument_table(check, results["forget_classes"]), style="numbers")]
    parts.append("<h2>Settings and provenance</h2>")
    for table_title, header, rows in _settings_tables(results):
        parts += [f"<h3>{e(table_title)}</h3>", _html_table(header, rows)]
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


# --- Markdown ---

def _md(text: str) -> str:
    """Text as literal Markdown: no emphasis, links, raw HTML or table cell breaks."""
    return re.sub(r"([\\`*_\[\]<>|&])", r"\\\1", text).replace("\n", " ")


def _md_cell(cell) -> str:
    text, style = cell if isinstance(cell, tuple) else (cell, "")
    strong = {"strong", "missed"} & set(style.split())
    return f"**{_md(text)}**" if strong else _md(text)


def _md_table(header: list, rows: list, numbers: bool = True) -> list[str]:
    """numbers: right-align the columns after the first."""
    alignment = " ---: " if numbers else " --- "
    lines = ["| " + " | ".join(_md_cell(c) for c in header) + " |",
             "|" + "|".join([" --- "] + [alignment] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _markdown_audits(audits: list[tuple[dict, dict[str, str]]]) -> list[str]:
    lines = ["## Audit", "", _md(AUDIT_NOTE), "", _md(TELL_NOTE), ""]
    if any(audit.get("relearning") for audit, _ in audits):
        lines += [_md(RELEARN_NOTE), ""]
    for (audit, names), title in zip(audits, _audit_titles([audit for audit, _ in audits])):
        lines += [f"### {_md(title)}", "", _md(_audit_intro(audit)), ""]
        tables = [_membership_table(audit), _tell_table(audit), *_relearn_tables(audit)]
        for caption, header, rows in tables:
            lines += [f"**{_md(caption)}**", "", *_md_table(header, rows)]
        for key, caption in _audit_figures(audit, names):
            lines += [f"![{_md(key)}]({quote(names[key])})", "", f"*{_md(caption)}*", ""]
    return lines


def render_markdown(results: dict, image_keys, front: dict | None = None,
                    audits: list[tuple[dict, dict[str, str]]] = ()) -> str:
    """`audits`: (audit.json, figure key -> its file name beside report.md) each."""
    lines = [f"# Unlearning results: {_md(results['dataset'])}", "",
             f"Forget classes: {_md(', '.join(results['forget_classes']))} · task {_md(results['task']['name'])}, "
             f"ratio {results['task']['ratio']:g} · seed {results['seed']} · {_scored_split(results)} · "
             f"created {_md(results['created'])}", "",
             "## Results", "", _md(LEGEND), ""]
    if results.get("intervals"):
        lines += [_md(INTERVAL_NOTE), ""]
    for set_name in SETS:
        caption, header, rows, _ = _results_table(results, set_name)
        lines += [f"**{_md(caption)}**", "", *_md_table(header, rows)]
    if results.get("hole_metrics"):
        lines += ["## Hidden region only", "", _md(HOLE_NOTE), ""]
        for set_name in SETS:
            caption, header, rows, _ = _hole_table(results, set_name)
            lines += [f"**{_md(caption)}**", "", *_md_table(header, rows)]
    collateral = _collateral_tables(results)
    if collateral:
        tables, worst_header, worst_rows = collateral
        lines += ["## Collateral damage per retain class", "", _md(COLLATERAL_NOTE), "",
                  *_md_table(worst_header, worst_rows)]
        for caption, header, rows in tables:
            lines += [f"**{_md(caption)}**", "", *_md_table(header, rows)]
    if results.get("targets"):
        lines += ["## Targets", "", *_md_table(*_targets_table(results))]
    if front:
        from i2i_unlearn.runs import FRONT_PLOT
        lines += ["## Trade-off front", "", _md(FRONT_NOTE), "", *_md_table(*_front_table(front)),
                  f"![front]({FRONT_PLOT})", ""]
    if audits:
        lines += _markdown_audits(list(audits))
    for section, figures in _figure_sections(image_keys):
        lines += [f"## {section}", ""]
        for key, caption in figures:
            lines += [f"![{_md(key)}]({quote(results['images'][key])})", "", f"*{_md(caption)}*", ""]
    lines += ["## Instrument check", "", _md(INSTRUMENT_NOTE), ""]
    check = results["instrument_check"]
    if check is None:
        lines += ["Not run: the evaluator has no classes.", ""]
    else:
        header, rows = _instrument_table(check, results["forget_classes"])
        header = [f"{c[0]} (forget)" if isinstance(c, tuple) else c for c in header]  # no shading in Markdown
        lines += [_md(f"{_instrument_intro(check)} {INSTRUMENT_KEY_MD}"), "",
                  *_md_table(header, rows)]
    lines += ["## Settings and provenance", ""]
    for table_title, header, rows in _settings_tables(results):
        lines += [f"### {table_title}", "", *_md_table(header, rows, numbers=False)]
    return "\n".join(lines)


def write_report(results_path: str | Path, out_dir: str | Path | None = None,
                 front_path: str | Path | None = None,
                 audit_paths: str | Path | list[str | Path] | tuple = ()) -> tuple[Path, Path]:
    """Write report.html and report.md for a results.json; returns their paths. `front_path`: a front.json of
    `unlearn --front`, shown as its own section. `audit_paths`: audit.json files of `audit`, shown in an Audit
    section (one subsection each); their figures are copied into out_dir as audit-<name>."""
    results_path = Path(results_path)
    results = load_results(results_path)
    out_dir = Path(out_dir) if out_dir is not None else results_path.parent
    images = _image_files(results, results_path.parent)
    front = load_front(front_path) if front_path is not None else None
    if isinstance(audit_paths, (str, Path)):
        audit_paths = [audit_paths]
    audits = [load_audit(path) for path in audit_paths]
    audit_names = _audit_names(audits, out_dir)
    # (source, name in out_dir) of every figure the Markdown links: no two may share a name
    audit_figures = [(files[key], names[key]) for (_, files), names in zip(audits, audit_names) for key in files]
    figures = [(path, path.name) for path in images.values()] + ([(front[1], front[1].name)] if front else [])
    seen = {}
    for source, name in figures + audit_figures:
        if name in seen and seen[name].resolve() != source.resolve():
            raise UserError(f"two figures, {seen[name]} and {source}, would both be {out_dir / name}: write the "
                            "report into another folder (--out)")
        seen[name] = source
    html_path, markdown_path = out_dir / "report.html", out_dir / "report.md"
    write_text_atomic(html_path, render_html(results, images, front, audits))
    copies = [(path, path.name) for path in images.values()] if out_dir.resolve() != results_path.parent.resolve() \
        else []
    if front:
        copies.append((front[1], front[1].name))
    copies += [(source, name) for source, name in audit_figures if source.resolve() != (out_dir / name).resolve()]
    for source, name in copies:   # the Markdown links images by file name
        atomic_write(out_dir / name, lambda tmp, source=source: shutil.copyfile(source, tmp))
    linked = [(audit, names) for (audit, _), names in zip(audits, audit_names)]
    write_text_atomic(markdown_path, render_markdown(results, images, front[0] if front else None, linked))
    return html_path, markdown_path
