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

def relearn_plot(relearning: dict, path: str | Path) -> Path:
    plt = pyplot()
    variants = list(next(iter(relearning["models"].values()))["variants"])
    figure, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants), 4.2), squeeze=False, sharey=True)
    for axis, variant in zip(axes[0], variants):
        for name, entry in relearning["models"].items():
            curve = entry["variants"][variant]["curve"]
            axis.plot([p["step"] for p in curve], [p["recognition"] for p in curve], marker="o", label=name)
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
