"""Evaluate models side by side on the held-out forget and retain test images under one task.

Every model generates for the same images with the same masks and seed; the numbers, grids and
T-SNE go to one folder with a results.json (schema: results.schema.json).
"""
from __future__ import annotations

import datetime
import time
from pathlib import Path

import torch

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


def _scores(evaluator, outputs, truth, masks, forget_indices, noise_outputs=None) -> dict:
    kid_mean, kid_std = metrics.kid(evaluator, outputs, truth)
    noise_kl = None
    if noise_outputs is not None:
        noise_kl = metrics.gaussian_kl(evaluator.features(outputs), evaluator.features(noise_outputs), NOISE_KL_SHRINK)
    return {"fid": metrics.fid(evaluator, outputs, truth), "kid_mean": kid_mean, "kid_std": kid_std,
            "is": metrics.inception_score(evaluator, outputs), "similarity": metrics.similarity(evaluator, outputs, truth),
            "recognition": metrics.recognition_rate(evaluator, outputs, forget_indices),
            "noise_kl": noise_kl, "hidden_mse": hidden_mse(outputs, truth, masks)}


def _fid_floor(evaluator, images: torch.Tensor, seed: int) -> float | None:
    """FID between two disjoint random halves of the real images: the noise floor of the set size."""
    if len(images) < 8:
        return None
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    half = len(images) // 2
    return metrics.fid(evaluator, images[order[:half]], images[order[half:2 * half]])


def evaluate(models: dict[str, I2IModel], split: UnlearnSplit, task: TaskConfig, evaluator, out_dir: str | Path,
             *, mean_image: torch.Tensor, model_dirs: dict[str, str] | None = None, seed: int = 0,
             grid_columns: int = 8, tsne_retain: int = 200, progress=None) -> dict:
    """Score every model on both held-out sets (of split.eval_split); write grids, T-SNE and results.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    class_names = split.forget_eval.class_names
    # the forget classes in the evaluator's own class list (an embedder has none: no recognition rate)
    evaluator_classes = evaluator.class_names if evaluator.has_classes else []
    forget_indices = [evaluator_classes.index(n) for n in split.forget_class_names if n in evaluator_classes]
    sets = {"forget": split.forget_eval, "retain": split.retain_eval}
    results_metrics: dict[str, dict] = {name: {} for name in [*models, MEAN_FILL, GROUND_TRUTH]}
    embeddings, images_out = {}, {}
    generation_time = {name: [0.0, 0] for name in models}  # seconds, images
    for set_name, images in sets.items():
        truth = images.images
        if len(truth) < 2:
            for row in results_metrics.values():
                row[set_name] = dict.fromkeys(["fid", "kid_mean", "kid_std", "is", "similarity", "recognition",
                                               "noise_kl", "hidden_mse"])
            continue
        rows, masks = [], None
        shown = torch.linspace(0, len(truth) - 1, min(grid_columns, len(truth))).round().long()  # spread over classes
        for name, model in models.items():
            started = time.perf_counter()
            outputs, masks = generate_outputs(model, truth, task, seed)
            generation_time[name][0] += time.perf_counter() - started
            generation_time[name][1] += len(truth)
            noise_outputs, _ = generate_outputs(model, noise_image(truth, "batch-gaussian",
                                                                   torch.Generator().manual_seed(seed)), task, seed)
            results_metrics[name][set_name] = _scores(evaluator, outputs, truth, masks, forget_indices, noise_outputs)
            images_out[(name, set_name)] = outputs
            rows.append((name, outputs[shown]))
            if progress:
                progress(f"scored {name} on {set_name}")
        filled = degrade(truth, masks, mean_image)
        results_metrics[MEAN_FILL][set_name] = _scores(evaluator, filled, truth, masks, forget_indices)
        results_metrics[GROUND_TRUTH][set_name] = _scores(evaluator, truth, truth, masks, forget_indices)
        grid_rows = [("input", show_input(truth[shown], masks[shown])), *rows, ("ground truth", truth[shown])]
        image_grid(grid_rows, out_dir / f"grid_{set_name}.png")
        for name in models:
            outputs = images_out[(name, set_name)]
            if set_name == "retain" and len(outputs) > tsne_retain:  # an even sample across the retain classes
                outputs = outputs[torch.linspace(0, len(outputs) - 1, tsne_retain).round().long()]
            embeddings[(name, set_name)] = evaluator.embeddings(outputs)
    figures = {f"grid_{s}": f"grid_{s}.png" for s in sets if len(sets[s]) >= 2}
    if embeddings:
        tsne_plot(embeddings, out_dir / "tsne.png", seed=seed)
        figures["tsne"] = "tsne.png"

    test_all = ImageSet(torch.cat([split.forget_eval.images, split.retain_eval.images]),
                        torch.cat([split.forget_eval.labels, split.retain_eval.labels]), class_names,
                        split.forget_eval.ids + split.retain_eval.ids, split.forget_eval.name)
    results = {
        "schema_version": 1,
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
        "reference_rows": [MEAN_FILL, GROUND_TRUTH],
        "floors": {name: {"fid_real_halves": _fid_floor(evaluator, images.images, seed)}
                   for name, images in sets.items()},
        "instrument_check": instrument_check(evaluator, test_all, task, seed) if evaluator.has_classes else None,
        "images": figures,
        "settings": {"sample_counts": {n: len(s) for n, s in sets.items()},
                     "sampler_steps": {name: model.sampling_steps for name, model in models.items()},
                     "generation_images_per_s": {name: round(count / seconds, 1) if seconds else None
                                                 for name, (seconds, count) in generation_time.items()},
                     "generation_seeded": "masks and sampling noise of each batch come from (seed, batch start)",
                     "kid_subsets": 50, "kid_subset_size": "min(100, set size)", "is_splits": 1,
                     "noise_kl": f"Gaussian-fitted KL(outputs || outputs for batch-gaussian noise inputs), "
                                 f"covariance shrinkage {NOISE_KL_SHRINK}",
                     "mean_image": "mean of the training split", "recognition": "argmax over the evaluator's "
                                                                               "classes, incl. 'no object'"},
        "versions": versions(),
    }
    results["targets"] = check_targets(results)
    validate_results(results)
    write_json_atomic(out_dir / "results.json", results)
    return results


def evaluate_model_dirs(model_dirs: dict[str, str | Path], task: TaskConfig, evaluator_spec: str | Path,
                        out_dir: str | Path, *, forget_classes: list[str] | None = None,
                        forget_files: str | Path | None = None, seed: int = 0,
                        split: str = "test", overwrite: bool = False) -> dict:
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
                        progress=lambda _: bar.update(1))
