"""Evaluate models side by side on the held-out forget and retain test images under one task.

Every model generates for the same images with the same masks and seed; the numbers, grids and
T-SNE go to one folder with a results.json (schema: results.schema.json).

Beside the whole-image scores: the same scores of the hidden region alone (`hole_view`: the visible
frame dominates whole-image numbers), per class (collateral damage to each retain class), and a
bootstrap over the test images for every score (one resampling of image indices shared by every
model and score, computed from features extracted once).
"""
from __future__ import annotations

import datetime
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from i2i_unlearn.checkpoints import sha256_text, versions, write_json_atomic
from i2i_unlearn.config import TaskConfig, to_dict
from i2i_unlearn.data import ImageSet, UnlearnSplit
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.evaluation.evaluator import instrument_check
from i2i_unlearn.evaluation.generation import generate_outputs, hidden_mse
from i2i_unlearn.evaluation.grids import image_grid, show_input
from i2i_unlearn.evaluation.results import validate_results
from i2i_unlearn.evaluation.targets import GROUND_TRUTH, MEAN_FILL, check_targets
from i2i_unlearn.evaluation.tsne import tsne_plot
from i2i_unlearn.models import I2IModel
from i2i_unlearn.tasks import degrade, noise_image

NOISE_KL_SHRINK = 0.1  # ReLU features have near-dead dimensions: shrink hard, the same for every model
BOOTSTRAP_RESAMPLES = 200  # the standard error of a score to about 5 % (1 / sqrt(2 x 200))
HOLE_VISIBLE_FILL = 0.0    # visible pixels inside the hole's bounding box (outpainting), the same in outputs and truth
HOLE_SCORES = ("fid", "similarity", "recognition")
MAX_GRID_CLASSES = 24      # rows of the per-class grid
WHOLE_BOOTSTRAPPED = ("fid", "is", "similarity", "recognition", "noise_kl", "hidden_mse")
HOLE_VIEW_DOC = ("each image cropped to the bounding box of its hidden pixels (visible pixels inside the box set to "
                 f"{HOLE_VISIBLE_FILL:g} in outputs and ground truth alike), resized (bilinear, antialiased) to the "
                 "evaluator's input size")
BOOTSTRAP_DOC = ("resampling the test images with replacement (outputs and their ground truths together, the same "
                 "resamples for every model); interval = estimate ± 1.96 x the standard deviation of the replicates; "
                 "FID, IS and noise KL recomputed from features extracted once")


def _scores(evaluator, outputs, truth, masks, forget_indices, noise_outputs=None) -> dict:
    kid_mean, kid_std = metrics.kid(evaluator, outputs, truth)
    noise_kl = None
    if noise_outputs is not None:
        noise_kl = metrics.gaussian_kl(evaluator.features(outputs), evaluator.features(noise_outputs), NOISE_KL_SHRINK)
    return {"fid": metrics.fid(evaluator, outputs, truth), "kid_mean": kid_mean, "kid_std": kid_std,
            "is": metrics.inception_score(evaluator, outputs), "similarity": metrics.similarity(evaluator, outputs, truth),
            "recognition": metrics.recognition_rate(evaluator, outputs, forget_indices),
            "noise_kl": noise_kl, "hidden_mse": hidden_mse(outputs, truth, masks)}


def evaluator_input_size(evaluator, images: torch.Tensor) -> int:
    """The image side the evaluator was trained on (a classifier records it), else the images' own."""
    return int((getattr(evaluator, "info", None) or {}).get("image_size") or images.shape[-1])


def hole_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(B, 4) top, bottom, left, right (exclusive) of each mask's hidden pixels; the whole image if none."""
    rows, cols = masks.amax(dim=(1, 3)) > 0, masks.amax(dim=(1, 2)) > 0   # (B, H), (B, W)
    height, width = rows.shape[1], cols.shape[1]

    def span(hit, size):
        any_hit = hit.any(dim=1)
        first = torch.where(any_hit, hit.float().argmax(dim=1), torch.zeros_like(any_hit, dtype=torch.long))
        last = torch.where(any_hit, size - hit.flip(1).float().argmax(dim=1), torch.full_like(first, size))
        return first, last
    top, bottom = span(rows, height)
    left, right = span(cols, width)
    return torch.stack([top, bottom, left, right], dim=1)


def hole_view(images: torch.Tensor, masks: torch.Tensor, size: int) -> torch.Tensor:
    """The hidden region alone (HOLE_VIEW_DOC): (B, C, size, size)."""
    boxes = hole_boxes(masks)
    view = torch.empty(len(images), images.shape[1], size, size, dtype=images.dtype)
    for box in boxes.unique(dim=0):   # one crop per distinct box (a centre hole: one for the whole set)
        members = torch.nonzero((boxes == box).all(dim=1)).flatten()
        top, bottom, left, right = box.tolist()
        crop = images[members][..., top:bottom, left:right]
        hidden = masks[members][..., top:bottom, left:right]
        crop = crop * hidden + HOLE_VISIBLE_FILL * (1 - hidden)
        if crop.shape[-2:] != (size, size):
            crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        view[members] = crop
    return view


class _Seen:
    """What the evaluator sees in one set of images, computed once: features, embeddings, logits."""

    def __init__(self, evaluator, images: torch.Tensor):
        features = evaluator.features(images)
        self.features = features.double()
        self.embeddings = F.normalize(self.features, dim=1)
        head = getattr(getattr(evaluator, "net", None), "head", None)   # the classifier: logits from its features
        with torch.no_grad():
            logits = head(features) if head is not None else evaluator.logits(images) if evaluator.has_classes else None
        self.logits = logits.double() if logits is not None else None
        self.predicted = self.logits.argmax(dim=1) if self.logits is not None else None

    def recognised(self, class_indices: list[int]) -> torch.Tensor | None:
        """Per image: 1 if predicted as one of `class_indices`."""
        if self.predicted is None or not class_indices:
            return None
        return torch.isin(self.predicted, torch.tensor(class_indices)).double()


def _fid_or_none(generated: torch.Tensor, real: torch.Tensor) -> float | None:
    return float(metrics.fid_from_features(generated, real)) if len(generated) >= 2 else None


def _mean_or_none(values: torch.Tensor | None) -> float | None:
    return None if values is None or len(values) == 0 else float(values.mean())


def _intervals(estimates: dict, replicates: dict) -> dict:
    return {key: metrics.bootstrap_interval(estimates.get(key), values) for key, values in replicates.items()}


def score_set(evaluator, outputs: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor,
              class_names: list[str], forget_indices: list[int], noise_outputs: torch.Tensor | None = None, *,
              bootstrap: int = BOOTSTRAP_RESAMPLES, seed: int = 0, per_class: bool = True) -> dict:
    """Every score of one model on one held-out set: the whole image (`_scores`: torchmetrics), the hidden
    region alone, each class alone, and bootstrap intervals of each over the test images."""
    whole = _scores(evaluator, outputs, truth, masks, forget_indices, noise_outputs)
    size = evaluator_input_size(evaluator, truth)
    hole_outputs, hole_truth = hole_view(outputs, masks, size), hole_view(truth, masks, size)
    seen = {"whole": (_Seen(evaluator, outputs), _Seen(evaluator, truth)),
            "hole": (_Seen(evaluator, hole_outputs), _Seen(evaluator, hole_truth))}
    hole_out, hole_real = seen["hole"]
    hole = {"fid": metrics.fid(evaluator, hole_outputs, hole_truth),
            "similarity": _mean_or_none((hole_out.embeddings * hole_real.embeddings).sum(dim=1)),
            "recognition": _mean_or_none(hole_out.recognised(forget_indices))}
    result = {"whole": whole, "hole": hole, "intervals": None, "per_class": None}
    noise_features = evaluator.features(noise_outputs).double() if noise_outputs is not None else None
    if bootstrap >= 2 and len(truth) >= 2:
        indices = metrics.bootstrap_indices(len(truth), bootstrap, seed)
        intervals = {}
        for view, (out, real) in seen.items():
            per_image = {"similarity": (out.embeddings * real.embeddings).sum(dim=1),
                         "recognition": out.recognised(forget_indices)}
            if view == "whole":
                per_image["hidden_mse"] = (((outputs - truth) ** 2 * masks).flatten(1).sum(1)
                                           / (masks.flatten(1).sum(1) * outputs.shape[1])).double()
            replicates = metrics.bootstrap_scores(
                indices, generated_features=out.features, real_features=real.features, per_image=per_image,
                logits=out.logits if view == "whole" else None,
                noise_features=noise_features if view == "whole" else None, noise_shrink=NOISE_KL_SHRINK)
            intervals[view] = _intervals(whole if view == "whole" else hole,
                                         {k: v for k, v in replicates.items()
                                          if k in (WHOLE_BOOTSTRAPPED if view == "whole" else HOLE_SCORES)})
        result["intervals"] = intervals
    if per_class:
        result["per_class"] = _per_class(evaluator, seen, labels, class_names, bootstrap, seed)
    return result


def _per_class(evaluator, seen: dict, labels: torch.Tensor, class_names: list[str], bootstrap: int,
               seed: int) -> dict:
    """Per class of the set: FID, similarity and the evaluator's recognition of that very class, whole
    image and hidden region, each with its bootstrap interval (resampled within the class)."""
    evaluator_classes = evaluator.class_names if evaluator.has_classes else []
    out = {}
    for label in sorted(set(labels.tolist())):
        name = class_names[label]
        members = torch.nonzero(labels == label).flatten()
        own = [evaluator_classes.index(name)] if name in evaluator_classes else []
        entry = {"count": len(members)}
        intervals = {}
        for view, (generated, real) in seen.items():
            features_g, features_r = generated.features[members], real.features[members]
            similarity = (generated.embeddings[members] * real.embeddings[members]).sum(dim=1)
            recognised = generated.recognised(own)
            recognised = recognised[members] if recognised is not None else None
            scores = {"fid": _fid_or_none(features_g, features_r), "similarity": _mean_or_none(similarity),
                      "recognition": _mean_or_none(recognised)}
            entry[view] = scores
            if bootstrap >= 2 and len(members) >= 2:
                indices = metrics.bootstrap_indices(len(members), bootstrap, seed + 1 + label)
                replicates = metrics.bootstrap_scores(indices, generated_features=features_g, real_features=features_r,
                                                      per_image={"similarity": similarity, "recognition": recognised})
                intervals[view] = _intervals(scores, replicates)
        entry["intervals"] = intervals or None
        out[name] = entry
    return out


def _class_grid_rows(truth, masks, labels, class_names, outputs: list[torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    """One row per class (its first test image, up to MAX_GRID_CLASSES classes): input, every model's output
    in table order, ground truth, so the damage to each class can be seen and not only read."""
    def rgb(images):
        return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    rows = []
    for label in labels.unique().tolist()[:MAX_GRID_CLASSES]:
        first = int(torch.nonzero(labels == label)[0])
        one = slice(first, first + 1)
        tiles = [show_input(truth[one], masks[one]), *(rgb(o[one]) for o in outputs), rgb(truth[one])]
        rows.append((class_names[label], torch.cat(tiles)))
    return rows


def evaluate(models: dict[str, I2IModel], split: UnlearnSplit, task: TaskConfig, evaluator, out_dir: str | Path,
             *, mean_image: torch.Tensor, model_dirs: dict[str, str] | None = None, seed: int = 0,
             grid_columns: int = 8, tsne_retain: int = 200, progress=None,
             bootstrap: int = BOOTSTRAP_RESAMPLES, noise_kl_sets: tuple[str, ...] = ("forget", "retain")) -> dict:
    """Score every model on both held-out sets (of split.eval_split); write grids, T-SNE and results.json.
    `bootstrap`: resamples of the test images for the intervals (0: none). `noise_kl_sets`: the sets whose
    outputs are compared with the model's outputs for noise inputs (each costs a second generation of the set)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    class_names = split.forget_eval.class_names
    # the forget classes in the evaluator's own class list (an embedder has none: no recognition rate)
    evaluator_classes = evaluator.class_names if evaluator.has_classes else []
    forget_indices = [evaluator_classes.index(n) for n in split.forget_class_names if n in evaluator_classes]
    sets = {"forget": split.forget_eval, "retain": split.retain_eval}
    results_metrics: dict[str, dict] = {name: {} for name in [*models, MEAN_FILL, GROUND_TRUTH]}
    hole_metrics: dict[str, dict] = {name: {} for name in results_metrics}
    intervals: dict[str, dict] = {name: {} for name in models}
    per_class: dict[str, dict] = {name: {} for name in models}
    embeddings, images_out, class_grids = {}, {}, []
    generation_time = {name: [0.0, 0] for name in models}  # seconds, images
    for set_name, images in sets.items():
        truth = images.images
        if len(truth) < 2:
            for row in results_metrics.values():
                row[set_name] = dict.fromkeys(["fid", "kid_mean", "kid_std", "is", "similarity", "recognition",
                                               "noise_kl", "hidden_mse"])
            for row in hole_metrics.values():
                row[set_name] = dict.fromkeys(HOLE_SCORES)
            for row in intervals.values():
                row[set_name] = None
            continue
        labels = images.labels
        rows, masks = [], None
        shown = torch.linspace(0, len(truth) - 1, min(grid_columns, len(truth))).round().long()  # spread over classes
        for name, model in models.items():
            started = time.perf_counter()
            outputs, masks = generate_outputs(model, truth, task, seed, description=f"{name}: {set_name} images")
            generation_time[name][0] += time.perf_counter() - started
            generation_time[name][1] += len(truth)
            noise_outputs = None
            if set_name in noise_kl_sets:
                noise_outputs, _ = generate_outputs(model, noise_image(truth, "batch-gaussian",
                                                                       torch.Generator().manual_seed(seed)), task, seed,
                                                    description=f"{name}: noise images")
            scored = score_set(evaluator, outputs, truth, masks, labels, class_names, forget_indices, noise_outputs,
                               bootstrap=bootstrap, seed=seed)
            results_metrics[name][set_name], hole_metrics[name][set_name] = scored["whole"], scored["hole"]
            intervals[name][set_name] = scored["intervals"]
            for class_name, entry in (scored["per_class"] or {}).items():
                per_class[name][class_name] = {"set": set_name, **entry}
            images_out[(name, set_name)] = outputs
            rows.append((name, outputs[shown]))
            if progress:
                progress(f"scored {name} on {set_name}")
        filled = degrade(truth, masks, mean_image)
        for reference, images_in in ((MEAN_FILL, filled), (GROUND_TRUTH, truth)):
            scored = score_set(evaluator, images_in, truth, masks, labels, class_names, forget_indices,
                               bootstrap=0, seed=seed, per_class=False)
            results_metrics[reference][set_name], hole_metrics[reference][set_name] = scored["whole"], scored["hole"]
        grid_rows = [("input", show_input(truth[shown], masks[shown])), *rows, ("ground truth", truth[shown])]
        image_grid(grid_rows, out_dir / f"grid_{set_name}.png")
        class_rows = _class_grid_rows(truth, masks, labels, class_names,
                                      [images_out[(name, set_name)] for name in models])
        if len(class_rows) >= 2:
            image_grid(class_rows, out_dir / f"grid_{set_name}_classes.png")
            class_grids.append(set_name)
        for name in models:
            outputs = images_out[(name, set_name)]
            if set_name == "retain" and len(outputs) > tsne_retain:  # an even sample across the retain classes
                outputs = outputs[torch.linspace(0, len(outputs) - 1, tsne_retain).round().long()]
            embeddings[(name, set_name)] = evaluator.embeddings(outputs)
    figures = {f"grid_{s}": f"grid_{s}.png" for s in sets if len(sets[s]) >= 2}
    figures.update({f"grid_{s}_classes": f"grid_{s}_classes.png" for s in class_grids})
    if embeddings:
        tsne_plot(embeddings, out_dir / "tsne.png", seed=seed)
        figures["tsne"] = "tsne.png"

    test_all = ImageSet(torch.cat([split.forget_eval.images, split.retain_eval.images]),
                        torch.cat([split.forget_eval.labels, split.retain_eval.labels]), class_names,
                        split.forget_eval.ids + split.retain_eval.ids, split.forget_eval.name)
    results = {
        "schema_version": 2,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "task": to_dict(task), "seed": seed, "dataset": split.forget_eval.name,
        "split": {"scored": split.eval_split, "parts": split.parts},
        "forget_classes": split.forget_class_names,
        "forget_kind": split.forget_kind,   # files: the forget set is the forgotten training images themselves
        "sets": {name: {"count": len(images), "classes": sorted({class_names[i] for i in images.labels.tolist()}),
                        "ids_sha256": sha256_text("\n".join(images.ids)),
                        "source": "train (the forgotten images)" if name == "forget" and split.forget_kind == "files"
                        else split.eval_split} for name, images in sets.items()},
        "evaluator": evaluator.describe(),
        "models": {name: {"dir": str((model_dirs or {}).get(name, "")), "family": model.family,
                          "weights_sha256": getattr(model, "pretrained_info", {}).get("weights_sha256", ""),
                          "method": (getattr(model, "pretrained_info", {}).get("unlearning") or {})
                          .get("config", {}).get("method")} for name, model in models.items()},
        "metrics": results_metrics,
        "hole_metrics": hole_metrics,
        "intervals": intervals,
        "per_class": per_class,
        "reference_rows": [MEAN_FILL, GROUND_TRUTH],
        "instrument_check": instrument_check(evaluator, test_all, task, seed) if evaluator.has_classes else None,
        "images": figures,
        "settings": {"sample_counts": {n: len(s) for n, s in sets.items()},
                     "sampler_steps": {name: model.sampling_steps for name, model in models.items()},
                     "generation_images_per_s": {name: round(count / seconds, 1) if seconds else None
                                                 for name, (seconds, count) in generation_time.items()},
                     "generation_seeded": "masks and sampling noise of each batch come from (seed, batch start)",
                     "kid_subsets": 50, "kid_subset_size": "min(100, set size)", "is_splits": 1,
                     "noise_kl": f"Gaussian-fitted KL(outputs || outputs for batch-gaussian noise inputs), "
                                 f"covariance shrinkage {NOISE_KL_SHRINK}"
                                 + ("" if set(noise_kl_sets) >= set(sets) else
                                    f"; computed on the {', '.join(noise_kl_sets) or 'no'} set(s) only"),
                     "mean_image": "mean of the training split", "recognition": "argmax over the evaluator's "
                                                                               "classes, incl. 'no object'",
                     "hole_view": HOLE_VIEW_DOC,
                     "per_class": "each class of a set alone; recognition = share of its outputs the evaluator "
                                  "calls that very class",
                     "bootstrap": {"resamples": bootstrap, "seed": seed, "level": metrics.LEVEL,
                                   "method": BOOTSTRAP_DOC}},
        "versions": versions(),
    }
    results["targets"] = check_targets(results)
    validate_results(results)
    write_json_atomic(out_dir / "results.json", results)
    return results


def warn_on_mixed_data(models: dict) -> None:
    """Every model is scored on the first model's held-out images: say so when another was trained on other data
    (and refuse images of another shape, which it cannot take)."""
    import sys
    from i2i_unlearn.errors import UserError
    from i2i_unlearn.unlearn import training_data_config
    datasets = {name: training_data_config(model).dataset for name, model in models.items()}
    (first_name, first), *others = models.items()
    for name, model in others:
        if model.image_shape != first.image_shape:
            raise UserError(f"model {name!r} takes {model.image_shape} images and {first_name!r} takes "
                            f"{first.image_shape}: models evaluated together must share their images")
    if len(set(datasets.values())) > 1:
        trained_on = ", ".join(f"{name}: {dataset}" for name, dataset in datasets.items())
        print(f"warning: the models were trained on different data ({trained_on}); every one is scored on held-out "
              f"{datasets[first_name]} images (the first model's)", file=sys.stderr, flush=True)


def evaluate_model_dirs(model_dirs: dict[str, str | Path], task: TaskConfig, evaluator_spec: str | Path,
                        out_dir: str | Path, *, forget_classes: list[str] | None = None,
                        forget_files: str | Path | None = None, seed: int = 0,
                        split: str = "test", overwrite: bool = False, bootstrap: int = BOOTSTRAP_RESAMPLES,
                        noise_kl_sets: tuple[str, ...] = ("forget", "retain")) -> dict:
    """Load models by directory (the first one's training data defines the test sets) and evaluate.
    A file-list request (`forget_files`, or recorded by a model folder) is scored on the forgotten
    images themselves and, for retain quality, on every never-seen image (audit.py)."""
    from tqdm.auto import tqdm

    evaluator_spec = str(evaluator_spec)  # a folder (str or Path), or "clip:/dir" / "hf:/dir"

    from i2i_unlearn.config import UnlearnConfig
    from i2i_unlearn.data import make_unlearn_split
    from i2i_unlearn.errors import UserError
    from i2i_unlearn.evaluation.audit import audit_sets, forgotten_files_split, model_forget_request
    from i2i_unlearn.evaluation.embedders import load_embedder
    from i2i_unlearn.models import load_model
    from i2i_unlearn.runs import prepare_output_dir
    from i2i_unlearn.tasks import check_task
    from i2i_unlearn.train import select_classes
    from i2i_unlearn.unlearn import default_retain_classes, input_folders, training_data_config

    check_task(task)
    if not model_dirs:
        raise UserError("give at least one model (--model NAME=DIR)")
    models = {name: load_model(directory) for name, directory in model_dirs.items()}
    evaluator = load_embedder(evaluator_spec)
    first = next(iter(models.values()))
    data = training_data_config(first)
    warn_on_mixed_data(models)
    files_split = None
    if forget_files or not forget_classes:  # a file list given, or what the models record
        request = {"forget_files": forget_files} if forget_files else model_forget_request(models, model_dirs)
        forget_classes = request.get("forget_classes", forget_classes)
        if "forget_classes" not in request and request:
            files_split = forgotten_files_split(audit_sets(
                data, **request, split=split, trained_classes=(first.pretrained_info.get("training") or {})
                .get("classes")))
            forget_classes = files_split.forget_class_names
    if not forget_classes:  # a file-list request from before forgotten_ids.sha256: its classes
        lineages = [m.pretrained_info.get("unlearning") for m in models.values()]
        forget_classes = next((l["forget_classes"] for l in lineages if l), None)
        if not forget_classes:
            raise UserError("no model records its forget classes: pass --forget-classes")
    if files_split is not None:
        held_out = files_split
    else:
        unlearn_config = UnlearnConfig(forget_classes=forget_classes,
                                       retain_classes=default_retain_classes(first, forget_classes))
        held_out = make_unlearn_split(data, unlearn_config, split)
    train = select_classes(held_out.train, (first.pretrained_info.get("training") or {}).get("classes"))
    out_dir = prepare_output_dir(out_dir, overwrite=overwrite, resume=False,
                                 protected=input_folders(*model_dirs.values(), evaluator_spec.split(":", 1)[-1], data))
    with tqdm(total=2 * len(models), desc="evaluate", dynamic_ncols=True) as bar:
        return evaluate(models, held_out, task, evaluator, out_dir, mean_image=train.images.mean(dim=0, keepdim=True),
                        model_dirs={k: str(v) for k, v in model_dirs.items()}, seed=seed,
                        progress=lambda _: bar.update(1), bootstrap=bootstrap, noise_kl_sets=noise_kl_sets)
