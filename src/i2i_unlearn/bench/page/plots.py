"""The results page's plots: the alpha trade-off, the retain-set size and the hole size."""
from __future__ import annotations

import re
from pathlib import Path

from i2i_unlearn.bench.page.tables import _is_method, _stat, _task_name
from i2i_unlearn.plotting import pyplot, save_figure

ZOOM = 2.0   # the zoomed panel shows retain FIDs up to this many times the original's

FID_PANELS = [("retain", "retain FID (lower is better)"), ("forget", "forget FID (higher is better)")]

def _pyplot():
    """matplotlib's pyplot without a display, or None where matplotlib is missing (the page gets no plots)."""
    try:
        return pyplot()
    except ImportError:
        return None

def _save(figure, plt, path: Path) -> None:
    save_figure(figure, path, tight=True)

def _leading_number(text: str) -> float | None:
    match = re.match(r"\s*(\d+(?:\.\d+)?)", text or "")
    return float(match.group(1)) if match else None

def settings_plot(table: dict, group: str, path: Path) -> bool:
    """An ablation whose settings are numbers (the retain-set size: real retain images per forget image):
    retain and forget FID for each setting in the order of its number, with the original, the retrained
    model and the method's main row as lines (bands: their 95 % intervals). False if matplotlib is missing or
    fewer than 2 settings are scored."""
    plt = _pyplot()
    members = [r for r in table["rows"] if r["group"] == group and not _is_method(r)
               and _stat(r, "retain", "whole", "fid") and _stat(r, "forget", "whole", "fid")]
    if plt is None or len(members) < 2 or any(_leading_number(r.get("setting")) is None for r in members):
        return False
    labels = list(dict.fromkeys(r["label"] for r in members))
    lines = [(r, "dimgray", "--", r["name"]) for r in table["rows"] if r["name"] == "original"]
    lines += [(r, "black", "-", r["name"]) for r in table["rows"] if r["name"] == "retrained"]
    colours = plt.get_cmap("tab10")
    lines += [(r, colours(labels.index(r["label"]) % 10), ":", f"{r['name']} (its main row)")
              for r in table["rows"] if r["group"] == "main" and r["label"] in labels]
    settings = sorted(dict.fromkeys(r["setting"] for r in members), key=_leading_number)   # evenly spaced
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.6), dpi=110)
    for axis, (set_name, axis_label) in zip(axes, FID_PANELS):
        for label in labels:
            points = sorted(((settings.index(r["setting"]), _stat(r, set_name, "whole", "fid")) for r in members
                             if r["label"] == label), key=lambda point: point[0])
            axis.errorbar([x for x, _ in points], [p["mean"] for _, p in points],
                          yerr=[p.get("hw") or 0.0 for _, p in points], color=colours(labels.index(label) % 10),
                          marker="o", capsize=3, label=label)
        for row, colour, style, name in lines:
            stat = _stat(row, set_name, "whole", "fid")
            if stat and stat.get("mean") is not None:
                axis.axhline(stat["mean"], color=colour, ls=style, lw=1.2, label=name)
                if stat.get("hw"):
                    axis.axhspan(stat["mean"] - stat["hw"], stat["mean"] + stat["hw"], color=colour, alpha=0.08)
        axis.set_xticks(range(len(settings)), settings, fontsize=8)
        axis.set_xlabel(f"{group}: the setting")
        axis.set_ylabel(axis_label)
        axis.set_ylim(bottom=max(0.0, axis.get_ylim()[0]))
        axis.legend(fontsize=8)
    axes[0].set_title(f"{table['family']}, {_task_name(table['task'])}: ablation {group} (bars: 95 % intervals)")
    _save(figure, plt, path)
    return True

def hole_size_plot(tables: list[dict], path: Path) -> bool:
    """One family's methods on every hole the bench scored (the same unlearned models): retain and forget FID
    as ratios to the original's on the same hole (log scale; 1 = the original), the retrained model beside
    them. False if matplotlib is missing or the family has a single task."""
    plt = _pyplot()
    if plt is None or len(tables) < 2:
        return False
    tables = sorted(tables, key=lambda t: (t["task"]["name"] != "center-inpaint", t["task"]["name"],
                                           t["task"]["ratio"]))
    labels = list(dict.fromkeys(r["label"] for t in tables for r in t["rows"] if _is_method(r)))
    series = [(label, lambda r, label=label: _is_method(r) and r["label"] == label) for label in labels]
    series.append(("retrained", lambda r: r["name"] == "retrained"))
    colours = plt.get_cmap("tab10")
    width = 0.8 / len(series)
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8), dpi=110)
    for axis, (set_name, axis_label) in zip(axes, FID_PANELS):
        originals = [next((_stat(r, set_name, "whole", "fid") for r in t["rows"] if r["name"] == "original"), None)
                     for t in tables]
        for j, (name, wanted) in enumerate(series):
            xs, ys, low, high = [], [], [], []
            for i, (table, original) in enumerate(zip(tables, originals)):
                row = next((r for r in table["rows"] if wanted(r) and _stat(r, set_name, "whole", "fid")), None)
                if not original or not original.get("mean") or row is None:
                    continue
                stat = _stat(row, set_name, "whole", "fid")
                ratio, error = stat["mean"] / original["mean"], (stat.get("hw") or 0.0) / original["mean"]
                xs.append(i - 0.4 + (j + 0.5) * width)
                ys.append(ratio)
                low.append(min(error, 0.95 * ratio))   # a log axis: the bar stops short of 0
                high.append(error)
            if xs:
                colour = "black" if name == "retrained" else colours(j % 10)
                axis.errorbar(xs, ys, yerr=[low, high], color=colour, marker="D" if name == "retrained" else "o",
                              ms=5, capsize=2, ls="none", label=name)
        axis.axhline(1.0, color="dimgray", ls="--", lw=1, label="original")
        axis.set_yscale("log")
        axis.set_xticks(range(len(tables)), [_task_name(t["task"]) for t in tables], fontsize=8)
        axis.set_ylabel(f"{axis_label}, ratio to the original's")
        axis.legend(fontsize=7, ncol=2)
    axes[0].set_title(f"{tables[0]['family']}: the same models on every hole (bars: 95 % intervals / original)")
    _save(figure, plt, path)
    return True

def tradeoff_plot(table: dict, path: Path) -> bool:
    """Forget FID against retain FID (means ± hw): main rows, each method's vary-ablation as a line, the
    original and the retrained model marked. Where some row's retain FID is past ZOOM x the original's, a
    second panel zooms on the rows within it (where the references are). False if matplotlib is missing or
    nothing is scored."""
    plt = _pyplot()
    rows = [r for r in table["rows"] if r.get("scores") and _stat(r, "retain", "whole", "fid")
            and _stat(r, "forget", "whole", "fid")]
    if plt is None or not rows:
        return False

    def point(row):
        x, y = _stat(row, "retain", "whole", "fid"), _stat(row, "forget", "whole", "fid")
        return x["mean"], y["mean"], x.get("hw") or 0.0, y.get("hw") or 0.0
    original = next((point(r)[0] for r in rows if r["name"] == "original"), None)
    zoom = original * ZOOM if original and any(point(r)[0] > original * ZOOM for r in rows) else None
    figure, axes = plt.subplots(1, 2 if zoom else 1, figsize=(13, 5.4) if zoom else (7, 5.2), dpi=110,
                                squeeze=False)
    for axis in axes[0]:
        _draw_tradeoff(axis, rows, point, plt.get_cmap("tab10"))
        # an FID is never negative; a two-seed interval can reach below 0, its bar is cut at the axis
        axis.set_xlim(left=max(0.0, axis.get_xlim()[0]))
        axis.set_ylim(bottom=max(0.0, axis.get_ylim()[0]))
    axes[0][0].set_title(f"{table['family']}, {_task_name(table['task'])}: trade-off (bars: 95 % intervals)")
    if zoom:
        # the range follows the means: one wide bar would otherwise flatten every point
        inside = [point(r) for r in rows if point(r)[0] <= zoom]
        low, high = min(y for _, y, _, _ in inside), max(y for _, y, _, _ in inside)
        pad = 0.25 * (high - low) or 0.25 * high or 1.0
        axes[0][1].set_xlim(max(0.0, min(x - xe for x, _, xe, _ in inside) * 0.95), zoom)
        axes[0][1].set_ylim(max(0.0, low - pad), high + pad)
        axes[0][1].set_title(f"zoom: retain FID up to {ZOOM:g}x the original's")
    _save(figure, plt, path)
    return True

def _draw_tradeoff(axis, rows: list[dict], point, colours) -> None:
    labels = list(dict.fromkeys(r["label"] for r in rows if r["label"]))
    for label in labels:
        colour = colours(labels.index(label) % 10)
        sweep = sorted([r for r in rows if r["label"] == label and r.get("vary")
                        and isinstance(r["vary"].get("value"), (int, float))], key=lambda r: r["vary"]["value"])
        if sweep:
            xs, ys, xe, ye = zip(*(point(r) for r in sweep))
            axis.errorbar(xs, ys, xerr=xe, yerr=ye, color=colour, alpha=0.55, marker=".", lw=1, capsize=2)
            for r, x, y in zip(sweep, xs, ys):
                axis.annotate(f"{r['vary']['value']:g}", (x, y), fontsize=6, color=colour, xytext=(3, 3),
                              textcoords="offset points", annotation_clip=True)
        for r in [r for r in rows if r["label"] == label and _is_method(r)]:
            x, y, xe, ye = point(r)
            axis.errorbar([x], [y], xerr=[xe], yerr=[ye], color=colour, marker="o", ms=7, capsize=3, label=label)
    for name, marker, colour in (("original", "*", "dimgray"), ("retrained", "D", "black")):
        for r in [r for r in rows if r["name"] == name]:
            x, y, xe, ye = point(r)
            axis.errorbar([x], [y], xerr=[xe], yerr=[ye], color=colour, marker=marker, ms=11, capsize=3, ls="none",
                          label=name)
    axis.set_xlabel("retain FID (lower is better)")
    axis.set_ylabel("forget FID (higher is better)")
    handles, names = axis.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    axis.legend(unique.values(), unique.keys(), fontsize=8)
