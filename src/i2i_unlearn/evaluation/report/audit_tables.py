"""The tables of an audit.json: membership inference, the tell and relearning, with each audit's title,
intro line and figure captions."""
from __future__ import annotations

from i2i_unlearn.evaluation.report.document import Table
from i2i_unlearn.evaluation.report.prose import (
    GRID_CAPTION,
    LIRA_ROC_CAPTION,
    RELEARN_CAPTION,
    RELEARN_VARIANTS,
    ROC_CAPTION,
)
from i2i_unlearn.evaluation.report.records import AUDIT_FIGURES
from i2i_unlearn.evaluation.report.tables import class_list
from i2i_unlearn.evaluation.results import MISSING
from i2i_unlearn.text import format_fixed


def _audit_title(audit: dict) -> str:
    """The forget request an audit is of: its classes, or its file list's size and classes."""
    forget = audit["forget"]
    classes = class_list(forget.get("forget_classes") or [])
    if forget.get("kind") == "files":
        total = forget["members"].get("forgotten_total") or forget["members"]["count"]
        return f"Forget {total} images (of {classes})"
    return f"Forget {classes}"


def audit_titles(audits: list[dict]) -> list[str]:
    """Each audit's title; audits of the same request are numbered."""
    titles = [_audit_title(audit) for audit in audits]
    counts = {title: titles.count(title) for title in titles}
    seen: dict[str, int] = {}
    numbered = []
    for title in titles:
        seen[title] = seen.get(title, 0) + 1
        numbered.append(f"{title} ({seen[title]})" if counts[title] > 1 else title)
    return numbered


def audit_intro(audit: dict) -> str:
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


def membership_table(audit: dict) -> Table:
    """Per model the attack's AUC and TPRs, the calibrated AUC and the AUC's difference from the reference
    model's (the target)."""
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
        row = [_reference_label(name, reference), format_fixed(attack["auc"]),
               *(format_fixed(attack.get(f"tpr_at_{level:g}_fpr")) for level in levels),
               format_fixed(calibrated["auc"] if calibrated else None)]
        if reference_auc is not None:
            row.append(MISSING if name == reference else f"{attack['auc'] - reference_auc:+.3f}")
        rows.append(row)
    members, non_members = forget["members"], forget["non_members"]
    caption = (f"Membership inference: {members['count']} forgotten training images vs {non_members['count']} "
               f"never-seen {forget.get('non_member_split', 'test')} images of "
               f"{class_list(non_members.get('classes') or forget.get('forget_classes') or [])}; calibrated "
               f"against {reference or 'no reference'}")
    return Table(header, rows, caption)


def lira_table(audit: dict) -> Table | None:
    """The per-example attack (LiRA) per audited model, each value with its 95 % interval over the images; None
    for an audit without shadow models."""
    lira = audit.get("lira")
    if not lira:
        return None
    keys = [("auc", "AUC"), ("tpr_at_0.01_fpr", "TPR at 1 % FPR"), ("tpr_at_0.001_fpr", "TPR at 0.1 % FPR")]

    def shown(entry, key):
        low_high = (entry.get("intervals") or {}).get(key)
        value = format_fixed(entry.get(key))
        return f"{value} ({format_fixed(low_high[0])} to {format_fixed(low_high[1])})" if low_high else value
    rows = [[name, *(shown(entry, key) for key, _ in keys)] for name, entry in lira["models"].items()]
    caption = (f"Per-example membership inference (LiRA): each of {lira['members']} forgotten images scored against "
               f"{lira['shadows']['in']} shadow models trained with it and {lira['shadows']['out']} without it; an "
               "audited model is read against the shadows without it (each scored by a fit that leaves it out). "
               "In parentheses: the 95 % interval over the images. A model that saw the images is caught (high TPR at low FPR); "
               "one that never did reads near the FPR")
    return Table(["model", *(label for _, label in keys)], rows, caption)


def tell_table(audit: dict) -> Table:
    """Per model, what its outputs on forget inputs give away."""
    tell = audit["tell"]
    reference = tell.get("probe_reference", audit.get("tell_reference"))
    threshold = tell.get("low_confidence_threshold")
    floor = tell.get("floor")
    permuted = any((e.get("probe_vs_reference") or {}).get("permutation") for e in tell["models"].values())
    header = ["model", "forget recognition", "no-object share", "low-confidence share",
              f"probe vs {reference}" if reference else "probe", "forget FID"]
    header += ["permutation p"] if permuted else []
    floor_models = (floor.get("models") or [floor.get("model")]) if floor else []   # older audits: one model
    header += [f"probe − floor ({', '.join(floor_models)})"] if floor else []
    rows = []
    for name, entry in tell["models"].items():
        probe = entry.get("probe_vs_reference")
        probe_cell = MISSING if not probe else (
            f"{probe['accuracy']:.3f} ± {probe['accuracy_std']:.3f}" if probe.get("accuracy_std") is not None
            else format_fixed(probe["accuracy"]))
        row = [_reference_label(name, reference), format_fixed(entry.get("forget_recognition")),
               format_fixed(entry.get("no_object_share")), format_fixed(entry.get("low_confidence_share")),
               probe_cell, format_fixed(entry.get("forget_fid"), 2)]
        if permuted:
            row.append(format_fixed(((probe or {}).get("permutation") or {}).get("p_value")))
        if floor:
            above = (probe or {}).get("above_floor")
            row.append(MISSING if above is None else f"{above:+.3f}"
                       + ("" if probe.get("within_floor_margin") else f" (over +{floor['margin']:g})"))
        rows.append(row)
    task = tell.get("task") or {}
    caption = f"The tell: outputs for {tell.get('count', MISSING)} forget inputs, {tell.get('inputs', MISSING)}"
    if {"name", "ratio"} <= task.keys():
        caption += f"; task {task['name']}, ratio {task['ratio']:g}"
    if threshold is not None:
        caption += f"; low confidence: top class probability below {threshold:g}"
    if permuted:
        caption += "; permutation p: how often the probe did as well with the two models' labels swapped at random"
    if floor:
        caption += (f"; the floor: the probe telling {' and '.join(floor_models)} (other retrained seeds) from "
                    f"{reference}, {format_fixed(floor['accuracy'])}" + (" on average" if len(floor_models) > 1 else "")
                    + ", what no method can be expected to beat")
    return Table(header, rows, caption)


def relearn_tables(audit: dict) -> list[Table]:
    """A table per relearning variant: recognition at each measured step, steps to half
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
        banded = any(result.get("band_area") is not None for result in entries.values())
        if banded:
            header.append("outside the retrained band (mean distance)")
        rows = []
        for name, result in entries.items():
            at = {point["step"]: point.get("recognition") for point in result["curve"]}
            never = f"> {config.get('steps', steps[-1])}"
            reached, back = result.get("steps_to_half_original"), result.get("steps_to_original")
            row = [_reference_label(name, reference), *(format_fixed(at.get(step)) for step in steps),
                   MISSING if half is None else str(reached) if reached is not None else never,
                   MISSING if half is None else str(back) if back is not None else never]
            if reference is not None:
                speedup = result.get("speedup_vs_reference")
                row.append(MISSING if speedup is None else f"{speedup:.2f}x")
            if banded:
                area = result.get("band_area")
                row.append(MISSING if area is None else format_fixed(area) + (" (above)" if result.get("above_band")
                                                                              else ""))
            rows.append(row)
        if reference is not None and all(row[len(steps) + 3] == MISSING for row in rows):
            # no model has a speed-up to show (none reaches half the original's): a column of dashes only widens
            # the table past the page, hiding the band column
            del header[len(steps) + 3]
            rows = [row[:len(steps) + 3] + row[len(steps) + 4:] for row in rows]
        trained = RELEARN_VARIANTS.get(variant, variant)
        seeds = len(config.get("attack_seeds") or ())
        details = ", ".join(x for x in (f"{seeds} attack seeds" if seeds > 1 else "",
                                        f"{config['images']} images" if "images" in config else "",
                                        f"lr {config['lr']:g}" if "lr" in config else "",
                                        f"batch {config['batch_size']}" if "batch_size" in config else "") if x)
        caption = (f"Relearning, {trained}" + (f" ({details})" if details else "") + ": forget-class recognition "
                   "after each number of steps; half the original's" + (f" ({original})" if original else "")
                   + f": {format_fixed(half)}; back to the original's: "
                   f"{format_fixed(relearning.get('original_return_level'))}")
        tables.append(Table(header, rows, caption))
    return tables


def audit_figures(audit: dict, keys) -> list[tuple[str, str]]:
    """(figure key, caption) of an audit's figures, in report order."""
    grid = f"Forget inputs, {audit['tell'].get('inputs', MISSING)}, the same for every model — {GRID_CAPTION}"
    captions = {"roc": ROC_CAPTION, "lira_roc": LIRA_ROC_CAPTION, "relearn": RELEARN_CAPTION, "grid_forget": grid}
    return [(key, captions[key]) for key in AUDIT_FIGURES if key in keys]

