"""Evaluate models side by side on the held-out forget and retain test images under one task.

Every model generates for the same images with the same masks and seed; the numbers, grids and
T-SNE go to one folder with a results.json (schema: results.schema.json).

Beside the whole-image scores: the same scores of the hidden region alone (`hole_view`: the visible
frame dominates whole-image numbers), per class (collateral damage to each retain class), and a
bootstrap over the test images for every score (one resampling of image indices shared by every
model and score, computed from features extracted once). Each score is of every image; the features KID,
per-class FID and the bootstrap need are kept for at most `interval_images` images of a set (scoring.py).
"""
from __future__ import annotations

import datetime
from pathlib import Path

import torch
import torch.nn.functional as F

from i2i_unlearn.checkpoints import sha256_text, versions, write_json_atomic
from i2i_unlearn.config import TaskConfig, UnlearnConfig, to_dict
from i2i_unlearn.data import UnlearnSplit, make_unlearn_split, select_classes
from i2i_unlearn.data.source import concatenated
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.evaluation.audit import audit_sets, forgotten_files_split, model_forget_request
from i2i_unlearn.evaluation.collect import collect_set
from i2i_unlearn.evaluation.embedders import load_embedder
from i2i_unlearn.evaluation.evaluator import instrument_check
from i2i_unlearn.evaluation.grids import image_grid, show_input
from i2i_unlearn.evaluation.results import validate_results
from i2i_unlearn.evaluation.scoring import (BOOTSTRAP_DOC, BOOTSTRAP_RESAMPLES, HOLE_SCORES, HOLE_VIEW_DOC,
                                         INTERVAL_IMAGES, INTERVAL_SAMPLE_DOC, INTERVAL_SEED_OFFSET, NOISE_KL_SHRINK,
                                         score_set)
from i2i_unlearn.evaluation.targets import GROUND_TRUTH, MEAN_FILL, check_targets
from i2i_unlearn.evaluation.tsne import tsne_plot
from i2i_unlearn.lineage import default_retain_classes, input_folders, training_data_config
from i2i_unlearn.models import I2IModel, load_model
from i2i_unlearn.runs import prepare_output_dir
from i2i_unlearn.tasks import check_task

MAX_GRID_CLASSES = 24      # rows of the per-class grid


def _firsts_of_classes(labels: torch.Tensor) -> list[tuple[int, int]]:
    """(label, position of its first image) for up to MAX_GRID_CLASSES classes: the per-class grid's rows."""
    return [(label, int(torch.nonzero(labels == label)[0])) for label in labels.unique().tolist()[:MAX_GRID_CLASSES]]


def _rgb(images: torch.Tensor) -> torch.Tensor:
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _check_max_images(max_images: int | None, interval_images: int | None = INTERVAL_IMAGES) -> None:
    if max_images is not None and max_images < 2:
        raise UserError(f"--max-eval-images must be at least 2 (a set's FID needs two images), got {max_images}")
    if interval_images is not None and interval_images < 2:
        raise UserError(f"--interval-images must be at least 2 (KID and the intervals need two images), got "
                        f"{interval_images}")


def evaluate(models: dict[str, I2IModel], split: UnlearnSplit, task: TaskConfig, evaluator, out_dir: str | Path,
             *, mean_image: torch.Tensor, model_dirs: dict[str, str] | None = None, seed: int = 0,
             grid_columns: int = 8, tsne_points: int = 200, progress=None,
             bootstrap: int = BOOTSTRAP_RESAMPLES, noise_kl_sets: tuple[str, ...] = ("forget", "retain"),
             max_images: int | None = None, interval_images: int | None = INTERVAL_IMAGES) -> dict:
    """Score every model on both held-out sets (of split.eval_split); write grids, T-SNE and results.json.
    The sets are read batch by batch (collect.py): every point estimate is of every image, from feature moments and
    a few numbers per image; the evaluator's per-image features, which KID, per-class FID and the bootstrap
    intervals need, are kept for at most `interval_images` images of each set (a seeded sample of a larger set, the
    same images for every row; None: every image). `bootstrap`: resamples of the test images for the intervals (0: none).
    `noise_kl_sets`: the sets whose outputs are compared with the model's outputs for noise inputs (each costs a
    second generation of the set). `max_images`: score an evenly spread sample of at most this many images of each
    set (a quick look; results.json and the report say it is a sample)."""
    _check_max_images(max_images, interval_images)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    class_names = split.forget_eval.class_names
    # the forget classes in the evaluator's own class list (an embedder has none: no recognition rate)
    evaluator_classes = evaluator.class_names if evaluator.has_classes else []
    forget_indices = [evaluator_classes.index(n) for n in split.forget_class_names if n in evaluator_classes]
    full_sets = {"forget": split.forget_eval, "retain": split.retain_eval}
    sets = {name: images.evenly(max_images) if max_images else images for name, images in full_sets.items()}
    results_metrics: dict[str, dict] = {name: {} for name in [*models, MEAN_FILL, GROUND_TRUTH]}
    hole_metrics: dict[str, dict] = {name: {} for name in results_metrics}
    intervals: dict[str, dict] = {name: {} for name in models}
    replicates: dict[str, dict] = {name: {} for name in models}
    per_class: dict[str, dict] = {name: {} for name in models}
    embeddings, class_grids = {}, []
    generation_time = {name: [0.0, 0] for name in models}  # seconds, images
    scored_images = {name: {"estimates": len(images), "intervals": len(images)} for name, images in sets.items()}
    for set_name, images in sets.items():
        if len(images) < 2:
            for row in results_metrics.values():
                row[set_name] = dict.fromkeys(["fid", "kid_mean", "kid_std", "is", "similarity", "recognition",
                                               "noise_kl", "hidden_mse"])
            for row in hole_metrics.values():
                row[set_name] = dict.fromkeys(HOLE_SCORES)
            for row in (*intervals.values(), *replicates.values()):
                row[set_name] = None
            continue
        labels = images.labels
        shown = torch.linspace(0, len(images) - 1, min(grid_columns, len(images))).round().long()  # spread over classes
        firsts = _firsts_of_classes(labels)
        keep = torch.cat([shown, torch.tensor([i for _, i in firsts], dtype=torch.long)]).unique()
        collected = collect_set(models, images, task, seed, evaluator, noise=set_name in noise_kl_sets,
                                mean_image=mean_image, keep=keep, description=f"evaluate: {set_name} images",
                                interval_images=interval_images)
        if collected.positions is not None:
            scored_images[set_name]["intervals"] = len(collected.positions)
        row_of = {position: row for row, position in enumerate(keep.tolist())}

        def kept(name: str, positions) -> torch.Tensor:   # kept images by their position in the set
            return collected.shown[name][[row_of[int(p)] for p in positions]]
        for name in models:
            generation_time[name][0] += collected.seconds[name]
            generation_time[name][1] += len(images)
            scored = score_set(collected.rows[name], collected.truths[name], labels, class_names, forget_indices,
                               evaluator_classes, bootstrap=bootstrap, seed=seed)
            results_metrics[name][set_name], hole_metrics[name][set_name] = scored["whole"], scored["hole"]
            intervals[name][set_name] = scored["intervals"]
            replicates[name][set_name] = scored["replicates"]
            for class_name, entry in (scored["per_class"] or {}).items():
                per_class[name][class_name] = {"set": set_name, **entry}
            if progress:
                progress(f"scored {name} on {set_name}")
        for reference in (MEAN_FILL, GROUND_TRUTH):
            scored = score_set(collected.rows[reference], collected.truths[reference], labels, class_names,
                               forget_indices, evaluator_classes, bootstrap=0, seed=seed, per_class=False)
            results_metrics[reference][set_name], hole_metrics[reference][set_name] = scored["whole"], scored["hole"]
        grid_rows = [("input", show_input(kept("truth", shown), kept("masks", shown))),
                     *((name, kept(name, shown)) for name in models), ("ground truth", kept("truth", shown))]
        image_grid(grid_rows, out_dir / f"grid_{set_name}.png")
        # one row per class (its first image): input, every model's output in table order, ground truth
        class_rows = [(class_names[label], torch.cat([show_input(kept("truth", [i]), kept("masks", [i])),
                                                      *(_rgb(kept(name, [i])) for name in models),
                                                      _rgb(kept("truth", [i]))])) for label, i in firsts]
        if len(class_rows) >= 2:
            image_grid(class_rows, out_dir / f"grid_{set_name}_classes.png")
            class_grids.append(set_name)
        for name in models:
            features = collected.rows[name].whole.features
            if len(features) > tsne_points:  # an even sample across the classes: a quick map of a set of any size
                features = features[torch.linspace(0, len(features) - 1, tsne_points).round().long()]
            embeddings[(name, set_name)] = F.normalize(features, dim=1)   # what evaluator.embeddings gives
    figures = {f"grid_{s}": f"grid_{s}.png" for s in sets if len(sets[s]) >= 2}
    figures.update({f"grid_{s}_classes": f"grid_{s}_classes.png" for s in class_grids})
    if embeddings:
        tsne_plot(embeddings, out_dir / "tsne.png", seed=seed)
        figures["tsne"] = "tsne.png"

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
                        else split.eval_split,
                        # images behind the point estimates, and behind KID, per-class FID and the intervals
                        "estimate_images": scored_images[name]["estimates"],
                        "interval_images": scored_images[name]["intervals"]} for name, images in sets.items()},
        "evaluator": evaluator.describe(),
        "models": {name: {"dir": str((model_dirs or {}).get(name, "")), "family": model.family,
                          "weights_sha256": getattr(model, "pretrained_info", {}).get("weights_sha256", ""),
                          "method": (getattr(model, "pretrained_info", {}).get("unlearning") or {})
                          .get("config", {}).get("method")} for name, model in models.items()},
        "metrics": results_metrics,
        "hole_metrics": hole_metrics,
        "intervals": intervals,
        "replicates": replicates,
        "per_class": per_class,
        "reference_rows": [MEAN_FILL, GROUND_TRUTH],
        "instrument_check": instrument_check(evaluator, concatenated(sets["forget"], sets["retain"]), task, seed)
        if evaluator.has_classes else None,
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
                                   "method": BOOTSTRAP_DOC},
                     "interval_sample": {"images": interval_images, "seed": seed + INTERVAL_SEED_OFFSET,
                                         "rule": INTERVAL_SAMPLE_DOC}},
        "versions": versions(),
    }
    if max_images:   # a quick look: every number below was computed on the sample
        for name, images in full_sets.items():
            results["sets"][name]["sampled_from"] = len(images)
        results["settings"]["max_eval_images"] = {
            "images": max_images, "sample": "at most this many of each set, evenly spread over it (sorted by class): "
                                            "a quick look, not the set's numbers"}
    results["targets"] = check_targets(results)
    validate_results(results)
    write_json_atomic(out_dir / "results.json", results)
    return results


def warn_on_mixed_data(models: dict) -> None:
    """Every model is scored on the first model's held-out images: say so when another was trained on other data
    (and refuse images of another shape, which it cannot take)."""
    import sys
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
                        noise_kl_sets: tuple[str, ...] = ("forget", "retain"), max_images: int | None = None,
                        interval_images: int | None = INTERVAL_IMAGES) -> dict:
    """Load models by directory (the first one's training data defines the test sets) and evaluate.
    A file-list request (`forget_files`, or recorded by a model folder) is scored on the forgotten
    images themselves and, for retain quality, on every never-seen image (evaluation/audit/sets.py).
    `max_images`: an evenly spread sample of each set, `interval_images`: the cap on per-image rows (evaluate's)."""
    from tqdm.auto import tqdm

    evaluator_spec = str(evaluator_spec)  # a folder (str or Path), or "clip:/dir" / "hf:/dir"
    check_task(task)
    _check_max_images(max_images, interval_images)
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
        return evaluate(models, held_out, task, evaluator, out_dir, mean_image=train.mean_image(),
                        model_dirs={k: str(v) for k, v in model_dirs.items()}, seed=seed,
                        progress=lambda _: bar.update(1), bootstrap=bootstrap, noise_kl_sets=noise_kl_sets,
                        max_images=max_images, interval_images=interval_images)
