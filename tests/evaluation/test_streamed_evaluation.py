"""`evaluate` reads its held-out sets batch by batch and keeps per-image features and scores, not images
(evaluation/collect.py): its numbers are those computed the old way, from every image and output held at once."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from i2i_unlearn.config import DataConfig, TaskConfig, UnlearnConfig
from i2i_unlearn.data import FolderImages, load_split, make_unlearn_split, open_dataset
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.evaluation.evaluate import evaluate
from i2i_unlearn.evaluation.evaluator import FILLS, instrument_check, load_evaluator, make_fill
from i2i_unlearn.evaluation.scoring import NOISE_KL_SHRINK, hole_view
from i2i_unlearn.models import load_model
from i2i_unlearn.models.generation import generate_outputs, hidden_mse
from i2i_unlearn.tasks import degrade, make_mask, noise_image

TASK = TaskConfig("center-inpaint", 0.5)
RESAMPLES = 20


def old_way(model, evaluator, truth, forget_indices, seed, mean_image):
    """A model's whole-image and hidden-region scores as evaluate computed them before it streamed: every output
    held at once, torchmetrics fed the images (KID before IS: they share the global generator)."""
    outputs, masks = generate_outputs(model, truth, TASK, seed)
    noise = noise_image(truth, "batch-gaussian", torch.Generator().manual_seed(seed))
    noise_outputs, _ = generate_outputs(model, noise, TASK, seed)
    rows = {}
    for name, images in (("model", outputs), ("mean-image fill", degrade(truth, masks, mean_image)),
                         ("ground truth", truth)):
        kid_mean, kid_std = metrics.kid(evaluator, images, truth)
        holes = hole_view(images, masks, 32), hole_view(truth, masks, 32)
        hole_embeddings = [F.normalize(evaluator.features(h).double(), dim=1) for h in holes]
        rows[name] = {"whole": {"fid": metrics.fid(evaluator, images, truth), "kid_mean": kid_mean,
                                "kid_std": kid_std, "is": metrics.inception_score(evaluator, images),
                                "similarity": metrics.similarity(evaluator, images, truth),
                                "recognition": metrics.recognition_rate(evaluator, images, forget_indices),
                                "hidden_mse": hidden_mse(images, truth, masks)},
                      "hole": {"fid": metrics.fid(evaluator, *holes),
                               "similarity": float((hole_embeddings[0] * hole_embeddings[1]).sum(1).mean()),
                               "recognition": float(torch.isin(evaluator.predict(holes[0]),
                                                               torch.tensor(forget_indices)).double().mean())}}
    rows["model"]["whole"]["noise_kl"] = metrics.gaussian_kl(evaluator.features(outputs),
                                                             evaluator.features(noise_outputs), NOISE_KL_SHRINK)
    rows["model"]["fid_replicates"] = metrics.bootstrap_scores(
        len(truth), RESAMPLES, seed, generated_features=evaluator.features(outputs).double(),
        real_features=evaluator.features(truth).double())["fid"]
    return rows


def old_instrument_check(evaluator, images, task, seed):
    """instrument_check as it was: one mask draw and one noise draw for the whole set at once."""
    generator = torch.Generator().manual_seed(seed)
    mask = make_mask(task, len(images), images.shape[-1], 8, generator)
    mean_image = images.mean(dim=0, keepdim=True)
    shares = {}
    for fill in FILLS:
        predicted = evaluator.predict(make_fill(images, mask, fill, mean_image, generator))
        counts = torch.bincount(predicted, minlength=len(evaluator.class_names)).float() / len(predicted)
        shares[fill] = {name: round(float(c), 4) for name, c in zip(evaluator.class_names, counts)}
    return shares


def test_evaluation_on_features_equals_evaluation_on_images(tiny_model_dir, tiny_evaluator_dir, tmp_path):
    """Issue 34: the streamed numbers are the old ones (hidden MSE to float rounding: its sums run per batch)."""
    model, evaluator = load_model(tiny_model_dir), load_evaluator(tiny_evaluator_dir)
    split = make_unlearn_split(DataConfig(test_per_class=30), UnlearnConfig(forget_classes=["Cat"]))
    assert len(split.retain_eval) > 2 * 128                 # several generation batches
    mean_image = load_split(DataConfig()).train.images.mean(dim=0, keepdim=True)
    results = evaluate({"original": model}, split, TASK, evaluator, tmp_path, mean_image=mean_image, seed=3,
                       bootstrap=RESAMPLES)
    forget_indices = [evaluator.class_names.index("Cat")]
    for set_name, images in (("forget", split.forget_eval), ("retain", split.retain_eval)):
        old = old_way(model, evaluator, images.images, forget_indices, 3, mean_image)
        for row, name in (("model", "original"), ("mean-image fill", "mean-image fill"),
                          ("ground truth", "ground truth")):
            streamed = results["metrics"][name][set_name]
            for key, value in old[row]["whole"].items():
                if key == "hidden_mse":
                    assert streamed[key] == pytest.approx(value, rel=1e-6, abs=1e-12)
                else:
                    assert streamed[key] == value, (set_name, name, key)
            for key, value in old[row]["hole"].items():
                assert results["hole_metrics"][name][set_name][key] == value, (set_name, name, "hole", key)
        fid_interval = results["intervals"]["original"][set_name]["whole"]["fid"]
        assert fid_interval["se"] == float(old["model"]["fid_replicates"].std())
    both = torch.cat([split.forget_eval.images, split.retain_eval.images])
    assert results["instrument_check"]["shares"] == old_instrument_check(evaluator, both, TASK, 3)


def test_the_instrument_check_read_in_batches_draws_what_one_whole_draw_did(tiny_evaluator_dir):
    """Random masks and noise fills: batch by batch, every image gets the draw the whole set's single pass gave it."""
    evaluator = load_evaluator(tiny_evaluator_dir)
    images = load_split(DataConfig()).test.subset(torch.arange(150))
    task = TaskConfig("random-patches", 0.5)
    expected = old_instrument_check(evaluator, images.images, task, seed=1)
    for batch_size in (64, 150):
        assert instrument_check(evaluator, images, task, seed=1, batch_size=batch_size)["shares"] == expected


def write_png_folder(root, images, class_names):
    """8-bit grey PNGs, one sub-folder per class: what the in-memory images were made from, read back exactly."""
    for position, (pixels, label) in enumerate(zip(images.images, images.labels.tolist())):
        folder = root / class_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        array = (pixels[0] * 255).round().to(torch.uint8).numpy()
        Image.fromarray(array, "L").save(folder / f"{position:04d}.png")


def test_a_folder_streamed_from_disk_is_scored_as_the_same_images_in_memory(tiny_model_dir, tiny_evaluator_dir,
                                                                            tmp_path):
    """evaluate never reads a folder's `.images` (FolderImages would raise): the same scores as in memory, the noise
    KL to float rounding (the folder's channel statistics are summed batch by batch)."""
    model, evaluator = load_model(tiny_model_dir), load_evaluator(tiny_evaluator_dir)
    test = load_split(DataConfig()).test
    picked = torch.cat([torch.nonzero(test.labels == label).flatten()[:16] for label in range(10)])
    write_png_folder(tmp_path / "folder", test.subset(picked), test.class_names)
    folder = open_dataset(DataConfig(dataset="image-folder", root=str(tmp_path / "folder"), image_size=32,
                                     channels=1))
    assert isinstance(folder, FolderImages) and folder.class_names == test.class_names
    cat = folder.class_indices(["Cat"])[0]
    streamed = make_unlearn_split(DataConfig(test_per_class=12), UnlearnConfig(forget_classes=["Cat"]))
    streamed = dataclasses.replace(streamed, forget_eval=folder.subset(torch.nonzero(folder.labels == cat).flatten()),
                                   retain_eval=folder.subset(torch.nonzero(folder.labels != cat).flatten()))
    in_memory = dataclasses.replace(streamed, forget_eval=streamed.forget_eval.materialize(),
                                    retain_eval=streamed.retain_eval.materialize())
    mean_image = torch.full((1, 1, 32, 32), 0.2)
    runs = [evaluate({"original": model}, split, TASK, evaluator, tmp_path / name, mean_image=mean_image,
                     bootstrap=RESAMPLES) for name, split in (("disk", streamed), ("memory", in_memory))]
    for set_name in ("forget", "retain"):
        disk, memory = (run["metrics"]["original"][set_name] for run in runs)
        assert disk.pop("noise_kl") == pytest.approx(memory.pop("noise_kl"), rel=1e-4)
        assert disk == memory
        assert runs[0]["hole_metrics"]["original"][set_name] == runs[1]["hole_metrics"]["original"][set_name]
    assert runs[0]["sets"] == runs[1]["sets"] and runs[0]["per_class"] == runs[1]["per_class"]


def test_max_eval_images_scores_an_even_sample_and_says_so(tiny_model_dir, tiny_evaluator_dir, tmp_path):
    from i2i_unlearn.errors import UserError
    from i2i_unlearn.evaluation.report.tables import results_table
    from i2i_unlearn.evaluation.results import summary_table
    model, evaluator = load_model(tiny_model_dir), load_evaluator(tiny_evaluator_dir)
    split = make_unlearn_split(DataConfig(test_per_class=12), UnlearnConfig(forget_classes=["Cat"]))
    mean_image = torch.full((1, 1, 32, 32), 0.2)
    results = evaluate({"original": model}, split, TASK, evaluator, tmp_path / "a", mean_image=mean_image,
                       bootstrap=0, max_images=10)
    assert results["sets"]["retain"]["count"] == 10 and results["sets"]["retain"]["sampled_from"] == 108
    assert results["sets"]["forget"]["count"] == 10 and results["sets"]["forget"]["sampled_from"] == 12
    assert len(results["sets"]["retain"]["classes"]) == 9           # spread over the classes, not the first ten
    assert results["settings"]["max_eval_images"]["images"] == 10
    assert "sample" in summary_table(results) and "sample" in results_table(results, "retain").caption
    with pytest.raises(UserError, match="at least 2"):
        evaluate({"original": model}, split, TASK, evaluator, tmp_path / "b", mean_image=mean_image, max_images=1)
