"""The tell: do a model's forget outputs give the forgetting away? The evaluator's "no object" share (or low
confidence), and a linear probe telling one model's outputs from the reference's for the same inputs."""
from __future__ import annotations

import math

import numpy as np
import torch

from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation import metrics

LOW_CONFIDENCE = 0.5                  # top class probability below this: "no confident class"

NO_OBJECT = "no object"               # the evaluator's extra class (evaluator.py)


def linear_probe(features_a: torch.Tensor, features_b: torch.Tensor, *, folds: int = 5, seed: int = 0,
                 paired: bool = False, weight_decay: float = 1e-2) -> dict:
    """k-fold cross-validated balanced accuracy of a logistic regression telling A from B
    (0.5 = indistinguishable), by scikit-learn: standardised features, class-balanced weights, L2 penalty
    `weight_decay` on the mean loss. `paired`: row i of A and of B come from the same input and go to the same
    fold (grouped folds), so the probe never sees the twin of a test output."""
    from sklearn.linear_model import LogisticRegression  # deferred for start-up time
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    n_a, n_b = len(features_a), len(features_b)
    if folds < 2:
        raise UserError(f"the probe needs at least 2 folds, got {folds}")
    if min(n_a, n_b) < folds:
        raise UserError(f"the probe needs at least {folds} outputs per side (one per fold), got {n_a} and {n_b}")
    if paired and n_a != n_b:
        raise ValueError("paired features need the same count on both sides")
    x = torch.cat([features_a, features_b]).double().numpy()
    y = np.concatenate([np.ones(n_a), np.zeros(n_b)])
    groups = np.concatenate([np.arange(n_a), np.arange(n_b) if paired else n_a + np.arange(n_b)])
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    accuracies = []
    for train, test in splitter.split(x, y, groups):
        # sklearn minimises C * sum(weighted loss) + |w|^2 / 2: the same optimum as mean loss + weight_decay |w|^2
        classifier = make_pipeline(StandardScaler(), LogisticRegression(
            C=1.0 / (2 * weight_decay * len(train)), class_weight="balanced", max_iter=1000))
        classifier.fit(x[train], y[train])
        accuracies.append(float(balanced_accuracy_score(y[test], classifier.predict(x[test]))))
    mean_accuracy = sum(accuracies) / folds
    spread = math.sqrt(sum((a - mean_accuracy) ** 2 for a in accuracies) / max(1, folds - 1))
    return {"accuracy": round(mean_accuracy, 4), "accuracy_std": round(spread, 4),
            "fold_accuracies": [round(a, 4) for a in accuracies], "folds": folds, "count": [n_a, n_b],
            "classifier": f"logistic regression (scikit-learn), standardised features, L2 {weight_decay} on the "
                          "mean loss, class-balanced; balanced accuracy over grouped stratified folds"}


def confidence_shares(evaluator, outputs: torch.Tensor) -> dict:
    """The evaluator's "no object" share, and the share without a confident class (max softmax
    below LOW_CONFIDENCE); None where the evaluator has no classes (an embedder)."""
    if not getattr(evaluator, "has_classes", False):
        return {"no_object_share": None, "low_confidence_share": None, "mean_max_probability": None}
    probabilities = torch.softmax(evaluator.logits(outputs), dim=1)
    top, predicted = probabilities.max(dim=1)
    names = list(evaluator.class_names)
    no_object = float((predicted == names.index(NO_OBJECT)).double().mean()) if NO_OBJECT in names else None
    return {"no_object_share": None if no_object is None else round(no_object, 4),
            "low_confidence_share": round(float((top < LOW_CONFIDENCE).double().mean()), 4),
            "mean_max_probability": round(float(top.mean()), 4)}

def tell_audit(evaluator, outputs: dict[str, torch.Tensor], *, reference: str | None, forget_indices: list[int],
               folds: int = 5, seed: int = 0) -> dict:
    """Per model: what the evaluator says about its forget outputs, and the probe against the reference's."""
    features = {name: evaluator.features(images) for name, images in outputs.items()}
    result = {}
    for name, images in outputs.items():
        entry = {**confidence_shares(evaluator, images),
                 "forget_recognition": metrics.recognition_rate(evaluator, images, forget_indices),
                 "probe_vs_reference": None}
        if reference is not None and name != reference:
            entry["probe_vs_reference"] = linear_probe(features[name], features[reference], folds=folds, seed=seed,
                                                       paired=True)
        result[name] = entry
    return result
