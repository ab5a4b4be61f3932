"""The tell: do a model's forget outputs give the forgetting away? The evaluator's "no object" share (or low
confidence), and a linear probe telling one model's outputs from the reference's for the same inputs."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.evaluation.scoring import Seen

LOW_CONFIDENCE = 0.5                  # top class probability below this: "no confident class"

NO_OBJECT = "no object"               # the evaluator's extra class (evaluator.py)


PERMUTATIONS = 100   # the permutation test's resolution: p-values to 1/101

FLOOR_MARGIN = 0.05  # the tell target: a model's probe accuracy at most the floor + this


def linear_probe(features_a: torch.Tensor, features_b: torch.Tensor, *, folds: int = 5, seed: int = 0,
                 paired: bool = False, weight_decay: float = 1e-2, permutations: int = 0) -> dict:
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
    folds_of = list(splitter.split(x, y, groups))

    def fold_accuracies(labels: np.ndarray) -> list[float]:
        accuracies = []
        for train, test in folds_of:
            # sklearn minimises C * sum(weighted loss) + |w|^2 / 2: the optimum of mean loss + weight_decay |w|^2
            classifier = make_pipeline(StandardScaler(), LogisticRegression(
                C=1.0 / (2 * weight_decay * len(train)), class_weight="balanced", max_iter=1000))
            classifier.fit(x[train], labels[train])
            accuracies.append(float(balanced_accuracy_score(labels[test], classifier.predict(x[test]))))
        return accuracies
    accuracies = fold_accuracies(y)
    mean_accuracy = sum(accuracies) / folds
    spread = math.sqrt(sum((a - mean_accuracy) ** 2 for a in accuracies) / max(1, folds - 1))
    result = {"accuracy": round(mean_accuracy, 4), "accuracy_std": round(spread, 4),
              "fold_accuracies": [round(a, 4) for a in accuracies], "folds": folds, "count": [n_a, n_b],
              "classifier": f"logistic regression (scikit-learn), standardised features, L2 {weight_decay} on the "
                            "mean loss, class-balanced; balanced accuracy over grouped stratified folds"}
    if permutations:
        result["permutation"] = _permutation_test(fold_accuracies, y, n_a, paired, mean_accuracy, permutations, seed)
    return result


def _permutation_test(fold_accuracies, y: np.ndarray, n_a: int, paired: bool, observed: float, permutations: int,
                      seed: int) -> dict:
    """How often the probe does as well with labels that carry no information: under the null that A and B are
    exchangeable, labels are swapped within each pair (paired) or shuffled (unpaired), the same folds refit.
    p = (1 + #null accuracies >= observed) / (1 + permutations)."""
    generator = np.random.default_rng(seed)
    null = []
    for _ in range(permutations):
        if paired:
            swap = generator.random(n_a) < 0.5
            labels = y.copy()
            labels[:n_a][swap], labels[n_a:][swap] = 0.0, 1.0
        else:
            labels = generator.permutation(y)
        null.append(float(np.mean(fold_accuracies(labels))))
    at_least = sum(a >= observed - 1e-12 for a in null)
    return {"p_value": round((1 + at_least) / (1 + permutations), 4), "permutations": permutations,
            "null_mean": round(float(np.mean(null)), 4), "null_95th": round(float(np.quantile(null, 0.95)), 4),
            "null": "labels swapped within each pair of outputs of the same input" if paired else "labels shuffled"}


def confidence_shares(evaluator, logits: torch.Tensor | None) -> dict:
    """The evaluator's "no object" share of a set of outputs (its logits, a row per output), and the share without a
    confident class (max softmax below LOW_CONFIDENCE); None where the evaluator has no classes (an embedder)."""
    if logits is None or not getattr(evaluator, "has_classes", False):
        return {"no_object_share": None, "low_confidence_share": None, "mean_max_probability": None}
    probabilities = torch.softmax(logits, dim=1)
    top, predicted = probabilities.max(dim=1)
    names = list(evaluator.class_names)
    no_object = float((predicted == names.index(NO_OBJECT)).double().mean()) if NO_OBJECT in names else None
    return {"no_object_share": None if no_object is None else round(no_object, 4),
            "low_confidence_share": round(float((top < LOW_CONFIDENCE).double().mean()), 4),
            "mean_max_probability": round(float(top.mean()), 4)}

def tell_audit(evaluator, seen: dict[str, Seen], *, reference: str | None, forget_indices: list[int],
               folds: int = 5, seed: int = 0, floor_models: Sequence[str] = (),
               permutations: int = PERMUTATIONS) -> tuple[dict, dict | None]:
    """Per model: what the evaluator says about its forget outputs (`seen`: the evaluator's features and logits of
    them, scoring.Seen), and the probe against the reference's with its permutation test. And the floor: the mean
    probe accuracy between each of `floor_models` (other retrained seeds) and the reference, which no method can be
    expected to beat (one pair's probe is noisy: with several seeds the floor is their mean, their range recorded);
    each probe's margin over it."""
    features = {name: rows.features for name, rows in seen.items()}
    result = {}
    for name, rows in seen.items():
        entry = {**confidence_shares(evaluator, rows.logits),
                 "forget_recognition": metrics.predicted_share(rows.predicted, forget_indices),
                 "probe_vs_reference": None}
        if reference is not None and name != reference:
            entry["probe_vs_reference"] = linear_probe(features[name], features[reference], folds=folds, seed=seed,
                                                       paired=True, permutations=permutations)
        result[name] = entry
    floor = probe_floor(result, floor_models, reference)
    return result, floor


def probe_floor(tell: dict, floor_models: Sequence[str], reference: str | None) -> dict | None:
    """The floor from the probes of `floor_models` (other retrained seeds) against the reference: their mean
    accuracy; each model's probe gets its margin over it (in place). None without such a model."""
    floor_models = [name for name in floor_models if name != reference]
    if not floor_models or reference is None:
        return None
    accuracies = [tell[name]["probe_vs_reference"]["accuracy"] for name in floor_models]
    floor = {"models": floor_models, "reference": reference, "margin": FLOOR_MARGIN, "accuracies": accuracies,
             "accuracy": round(sum(accuracies) / len(accuracies), 4)}
    for entry in tell.values():
        probe = entry["probe_vs_reference"]
        if probe is not None:
            probe["above_floor"] = round(probe["accuracy"] - floor["accuracy"], 4)
            probe["within_floor_margin"] = probe["above_floor"] <= FLOOR_MARGIN
    return floor
