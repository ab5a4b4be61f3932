"""The audit's figures: ROC curves of the membership attack, relearning curves."""
from __future__ import annotations

from pathlib import Path

from i2i_unlearn.plotting import pyplot, save_figure


def _save_figure(figure, path: Path) -> None:
    save_figure(figure, path, dpi=110, bbox_inches="tight")

def roc_plot(membership: dict, path: str | Path) -> Path:
    plt = pyplot()
    models = membership["models"]
    kinds = ["attack"] + (["calibrated"] if any(m["calibrated"] for m in models.values()) else [])
    figure, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 4.6), squeeze=False)
    for axis, kind in zip(axes[0], kinds):
        for name, entry in models.items():
            if entry[kind]:
                axis.plot(entry[kind]["roc"]["fpr"], entry[kind]["roc"]["tpr"],
                          label=f"{name} (AUC {entry[kind]['auc']:.3f})")
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        axis.set(xlabel="false positive rate (never-seen called member)",
                 ylabel="true positive rate (forgotten called member)",
                 title="restoration-error attack" + (" calibrated by the reference" if kind == "calibrated" else ""))
        axis.legend(fontsize=8, loc="lower right")
    path = Path(path)
    _save_figure(figure, path)
    return path

def lira_roc_plot(lira: dict, path: str | Path) -> Path:
    """The per-example attack's ROC on log axes: an attack is judged at low false positive rates."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5, 4.6))
    floor = 1.0 / max(1, next(iter(lira["models"].values()))["null_models"] * lira["members"])
    for name, entry in lira["models"].items():
        if entry.get("roc"):
            axis.plot([max(f, floor) for f in entry["roc"]["fpr"]], [max(t, floor) for t in entry["roc"]["tpr"]],
                      label=f"{name} (TPR@1% {entry['tpr_at_0.01_fpr']:.3f})")
    axis.plot([floor, 1], [floor, 1], color="grey", linestyle=":", linewidth=1)
    axis.set(xscale="log", yscale="log", xlabel="false positive rate (a model without the images called member)",
             ylabel="true positive rate", title="per-example attack (LiRA)")
    axis.legend(fontsize=8, loc="lower right")
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
        if bands.get(variant):
            limits = bands[variant]
            axis.fill_between([b["step"] for b in limits], [b["lo"] for b in limits], [b["hi"] for b in limits],
                              color="grey", alpha=0.25, label="retrained band")
        for name, entry in relearning["models"].items():
            curve = entry["variants"][variant]["curve"]
            line, = axis.plot([p["step"] for p in curve], [p["recognition"] for p in curve], marker="o", label=name)
            if curve[0].get("recognition_min") is not None:   # the attack seeds' spread
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
        axis.legend(fontsize=8)
    path = Path(path)
    _save_figure(figure, path)
    return path
