"""T-SNE of output embeddings: each model's outputs, forget vs retain."""
from __future__ import annotations

from pathlib import Path

import torch
from sklearn.manifold import TSNE

from i2i_unlearn.plotting import pyplot, save_figure

MARKERS = "os^Dv<>p"


def tsne_plot(embeddings: dict[tuple[str, str], torch.Tensor], path: str | Path, seed: int = 0) -> Path:
    """One 2-D map of every (model, set) group of embeddings; colour = model, marker = set."""
    keys = list(embeddings)
    stacked = torch.cat([embeddings[k] for k in keys]).numpy()
    points = TSNE(n_components=2, perplexity=min(30, max(5, len(stacked) // 10)), init="pca",
                  random_state=seed).fit_transform(stacked)
    models = list(dict.fromkeys(name for name, _ in keys))
    sets = list(dict.fromkeys(s for _, s in keys))
    plt = pyplot()
    colours = plt.get_cmap("tab10")
    figure, axis = plt.subplots(figsize=(6.5, 5.5), dpi=110)
    start = 0
    for name, set_name in keys:
        count = len(embeddings[(name, set_name)])
        chunk = points[start:start + count]
        start += count
        axis.scatter(chunk[:, 0], chunk[:, 1], s=9, alpha=0.6, color=colours(models.index(name)),
                     marker=MARKERS[sets.index(set_name) % len(MARKERS)], label=f"{name} / {set_name}")
    axis.set_title("T-SNE of output embeddings")
    axis.set_xticks([])
    axis.set_yticks([])
    axis.legend(fontsize=8, markerscale=2)
    return save_figure(figure, path, tight=True)
