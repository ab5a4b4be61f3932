"""The audit's figures: ROC curves of the membership attack, relearning curves."""
from __future__ import annotations

from pathlib import Path

from i2i_unlearn.plotting import pyplot, save_figure


SPREADS_UP_TO = 6   # relearning curves drawn with their attack seeds' range up to this many models


def _save_figure(figure, path: Path) -> None:
    save_figure(figure, path, dpi=110, bbox_inches="tight")


def _legend_below(axis, columns: int = 2) -> None:
    """The legend under the axes, not over the curves: an audit of every method draws a dozen or more of them."""
    axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=columns, frameon=False)


def _distinct_colours(plt, axis, count: int) -> None:
    """Past the default cycle's ten colours, twenty (tab20) so no two curves share one."""
    if count > 10:
        axis.set_prop_cycle(color=plt.get_cmap("tab20").colors)


def roc_plot(membership: dict, path: str | Path) -> Path:
    plt = pyplot()
    models = membership["models"]
    kinds = ["attack"] + (["calibrated"] if any(m["calibrated"] for m in models.values()) else [])
    figure, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 4.6), squeeze=False)
    for axis, kind in zip(axes[0], kinds):
        _distinct_colours(plt, axis, len(models))
        for name, entry in models.items():
            if entry[kind]:
                axis.plot(entry[kind]["roc"]["fpr"], entry[kind]["roc"]["tpr"],
                          label=f"{name} (AUC {entry[kind]['auc']:.3f})")
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        axis.set(xlabel="false positive rate (never-seen called member)",
                 ylabel="true positive rate (forgotten called member)",
                 title="restoration-error attack" + (" calibrated by the reference" if kind == "calibrated" else ""))
        _legend_below(axis)
    path = Path(path)
    _save_figure(figure, path)
    return path

def lira_roc_plot(lira: dict, path: str | Path) -> Path:
    """The per-example attack's ROC on log axes: an attack is judged at low false positive rates."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5, 4.6))
    floor = 1.0 / max(1, next(iter(lira["models"].values()))["null_models"] * lira["members"])
    _distinct_colours(plt, axis, len(lira["models"]))
    for name, entry in lira["models"].items():
        if entry.get("roc"):
            axis.plot([max(f, floor) for f in entry["roc"]["fpr"]], [max(t, floor) for t in entry["roc"]["tpr"]],
                      label=f"{name} (TPR@1% {entry['tpr_at_0.01_fpr']:.3f})")
    axis.plot([floor, 1], [floor, 1], color="grey", linestyle=":", linewidth=1)
    axis.set(xscale="log", yscale="log", xlabel="false positive rate (a model without the images called member)",
             ylabel="true positive rate", title="per-example attack (LiRA)")
    _legend_below(axis)
    path = Path(path)
    _save_figure(figure, path)
    return path


def relearn_plot(relearning: dict, path: str | Path) -> Path:
    plt = pyplot()
    variants = [v for v, result in next(iter(relearning["models"].values()))["variants"].items()
                if len(result["curve"]) > 1]   # the fine-tuning attacks (a quantization is one point: the table's)
    bands = (relearning.get("band") or {}).get("bands") or {}
    figure, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants), 4.2), squeeze=False, sharey=True)
    for axis, variant in zip(axes[0], variants):
        _distinct_colours(plt, axis, len(relearning["models"]))
        if bands.get(variant):
            limits = bands[variant]
            axis.fill_between([b["step"] for b in limits], [b["lo"] for b in limits], [b["hi"] for b in limits],
                              color="grey", alpha=0.25, label="retrained band")
        for name, entry in relearning["models"].items():
            curve = entry["variants"][variant]["curve"]
            line, = axis.plot([p["step"] for p in curve], [p["recognition"] for p in curve], marker="o", label=name)
            # the attack seeds' spread, where it leaves the retrained band visible (few models; else the tables')
            if curve[0].get("recognition_min") is not None and len(relearning["models"]) <= SPREADS_UP_TO:
                axis.fill_between([p["step"] for p in curve], [p["recognition_min"] for p in curve],
                                  [p["recognition_max"] for p in curve], color=line.get_color(), alpha=0.12)
        if relearning.get("half_original_recognition") is not None:
            axis.axhline(relearning["half_original_recognition"], color="grey", linestyle=":", linewidth=1,
                         label="half the original's")
        if relearning.get("original_return_level") is not None:
            axis.axhline(relearning["original_return_level"], color="black", linestyle="--", linewidth=1,
                         label="back to the original's")
        axis.set(xlabel="fine-tuning steps on forget-class training images", ylabel="forget-class recognition",
                 title=f"relearning: {variant}")
    # one legend for every panel (the same models, the same colours), under them
    entries = {}   # label -> handle, over every panel (a band may be drawn on some panels only)
    for axis in axes[0]:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    handles, labels = list(entries.values()), list(entries)
    figure.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                  ncol=min(len(labels), 3 * len(variants)), frameon=False)
    path = Path(path)
    _save_figure(figure, path)
    return path
