"""Issue 34: a set above the cap on per-image rows (scoring.INTERVAL_IMAGES) keeps the features of a seeded sample
of its images, the same for every row, while its point estimates stay those of every image: FID and noise KL from
feature moments accumulated batch by batch, IS from summed class probabilities, similarity, recognition and hidden
MSE per image."""
import pytest
import torch

from i2i_unlearn.config import DataConfig, TaskConfig, UnlearnConfig
from i2i_unlearn.data import make_unlearn_split
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.evaluation.collect import collect_set
from i2i_unlearn.evaluation.evaluate import evaluate
from i2i_unlearn.evaluation.evaluator import load_evaluator
from i2i_unlearn.evaluation.scoring import Moments, interval_positions
from i2i_unlearn.models import load_model

TASK = TaskConfig("center-inpaint", 0.5)


def test_fid_kl_and_is_from_streamed_sums_equal_them_from_the_rows():
    """Moments and probability sums accumulated in uneven batches give the numbers of every row held at once."""
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(300, 12, generator=generator) * 2 + 1
    generated = torch.randn(300, 12, generator=generator) @ torch.randn(12, 12, generator=generator) * 0.4
    logits = torch.randn(300, 5, generator=generator) * 3

    def streamed(features):
        moments = Moments.of(features[:7])
        for part in features[7:].split(64):
            moments.add(Moments.of(part))
        return moments.mean_covariance()
    from_rows = metrics.fid_of_features(generated, real)
    assert metrics.fid_of_moments(*streamed(generated), *streamed(real)) == pytest.approx(from_rows, rel=1e-6)
    assert metrics.gaussian_kl_of_moments(*streamed(generated), *streamed(real), 0.1) == pytest.approx(
        metrics.gaussian_kl(generated, real, 0.1), rel=1e-9)
    probabilities = logits.double().softmax(dim=1)
    plogp = (probabilities * logits.double().log_softmax(dim=1)).sum()
    assert metrics.inception_score_of_sums(probabilities.sum(dim=0), plogp, len(logits)) == pytest.approx(
        metrics.inception_score_of_logits(logits), rel=1e-6)


def test_the_sampled_positions_are_a_pure_function_of_size_cap_and_seed():
    assert interval_positions(100, 100, 0) is None and interval_positions(100, None, 0) is None   # no sample
    first = interval_positions(1000, 50, 3)
    assert torch.equal(first, interval_positions(1000, 50, 3))            # the same for every call: every row
    assert len(first) == 50 == len(first.unique()) and torch.equal(first, first.sort().values)
    assert int(first.min()) >= 0 and int(first.max()) < 1000
    assert not torch.equal(first, interval_positions(1000, 50, 4))        # another seed, another sample


def test_every_row_keeps_the_same_sampled_images_and_their_features_unchanged(tiny_model_dir, tiny_evaluator_dir):
    """Two models, the mean-image fill and the ground truth: the rows of the sampled positions, bit-identical to
    those a pass without a cap keeps for the same images; every image still in the streamed columns."""
    models = {"original": load_model(tiny_model_dir), "other": load_model(tiny_model_dir)}
    with torch.no_grad():   # another model: its weights moved a little
        generator = torch.Generator().manual_seed(0)
        for parameter in models["other"].parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    evaluator = load_evaluator(tiny_evaluator_dir)
    images = make_unlearn_split(DataConfig(test_per_class=15), UnlearnConfig(forget_classes=["Cat"])).retain_eval
    mean_image = torch.full((1, 1, 32, 32), 0.2)
    kwargs = dict(noise=True, mean_image=mean_image, batch_size=40)
    full = collect_set(models, images, TASK, 5, evaluator, interval_images=None, **kwargs)
    capped = collect_set(models, images, TASK, 5, evaluator, interval_images=30, **kwargs)
    positions = interval_positions(len(images), 30, 5)
    assert full.positions is None and torch.equal(capped.positions, positions)
    for name in capped.rows:
        for rows in (capped.rows[name], capped.truths.get(name, capped.rows[name])):
            assert torch.equal(rows.positions, positions) and len(rows.whole.features) == 30
            assert rows.streamed.count == len(images) == len(rows.streamed.column("similarity"))
        assert torch.equal(capped.rows[name].whole.features, full.rows[name].whole.features[positions])
        assert torch.equal(capped.rows[name].hole.features, full.rows[name].hole.features[positions])
        assert torch.equal(capped.rows[name].hidden_error, full.rows[name].hidden_error[positions])
        if capped.rows[name].noise_features is not None:
            assert torch.equal(capped.rows[name].noise_features, full.rows[name].noise_features[positions])


def test_a_set_above_the_cap_keeps_every_point_estimate_and_says_what_came_from_the_sample(
        tiny_model_dir, tiny_evaluator_dir, tmp_path):
    """The same evaluation with every row and with 40 of them: FID, IS, noise KL to float rounding, similarity,
    recognition and hidden MSE alike; KID and the intervals from the sample, and results.json says how many."""
    model, evaluator = load_model(tiny_model_dir), load_evaluator(tiny_evaluator_dir)
    split = make_unlearn_split(DataConfig(test_per_class=12), UnlearnConfig(forget_classes=["Cat"]))
    mean_image = torch.full((1, 1, 32, 32), 0.2)
    every, sampled = (evaluate({"original": model}, split, TASK, evaluator, tmp_path / name, mean_image=mean_image,
                               bootstrap=20, interval_images=cap) for name, cap in (("every", None), ("sampled", 40)))
    assert every["sets"]["retain"]["interval_images"] == 108 == sampled["sets"]["retain"]["estimate_images"]
    assert sampled["sets"]["retain"]["interval_images"] == 40
    assert sampled["sets"]["forget"]["interval_images"] == 12 == sampled["sets"]["forget"]["estimate_images"]
    assert every["sets"]["forget"] == sampled["sets"]["forget"]            # below the cap: nothing changes
    assert every["metrics"]["original"]["forget"] == sampled["metrics"]["original"]["forget"]
    assert every["intervals"]["original"]["forget"] == sampled["intervals"]["original"]["forget"]
    for row in ("original", "mean-image fill", "ground truth"):
        full, part = every["metrics"][row]["retain"], sampled["metrics"][row]["retain"]
        for key in ("fid", "is", "noise_kl", "similarity", "hidden_mse"):
            if full[key] is not None:
                assert part[key] == pytest.approx(full[key], rel=1e-6, abs=1e-9), (row, key)
        assert part["recognition"] == full["recognition"]
        for key in ("fid", "similarity", "recognition"):
            full_hole, part_hole = every["hole_metrics"][row]["retain"][key], sampled["hole_metrics"][row]["retain"][key]
            assert part_hole == pytest.approx(full_hole, rel=1e-6, abs=1e-9), (row, "hole", key)
    assert sampled["metrics"]["original"]["retain"]["kid_mean"] != every["metrics"]["original"]["retain"]["kid_mean"]
    interval = sampled["intervals"]["original"]["retain"]["whole"]["fid"]
    assert interval["lo"] < sampled["metrics"]["original"]["retain"]["fid"] < interval["hi"]   # around every image's
    assert len(sampled["replicates"]["original"]["retain"]["whole"]["fid"]) == 20
    for name, entry in sampled["per_class"]["original"].items():    # every retain class, counted in full
        assert entry["count"] == every["per_class"]["original"][name]["count"]
        assert entry["whole"]["similarity"] == pytest.approx(every["per_class"]["original"][name]["whole"]
                                                             ["similarity"], rel=1e-9)
    assert sum(e.get("interval_images", 0) for e in sampled["per_class"]["original"].values()) == 40
    assert sampled["settings"]["interval_sample"]["images"] == 40
    from i2i_unlearn.evaluation.report.tables import results_table
    from i2i_unlearn.evaluation.results import summary_table
    assert "KID and ± from a sample of 40" in summary_table(sampled) and "sample" not in summary_table(every)
    assert "seeded sample of 40" in results_table(sampled, "retain").caption
    assert "sample" not in results_table(sampled, "forget").caption


def test_the_command_line_passes_the_cap_and_refuses_one_below_two(tmp_path):
    """Refused before any model is read (the model folder does not even exist)."""
    from typer.testing import CliRunner

    from i2i_unlearn.cli import app
    from i2i_unlearn.errors import UserError
    result = CliRunner().invoke(app, ["evaluate", "--model", f"a={tmp_path / 'none'}", "--out", str(tmp_path / "out"),
                                      "--interval-images", "1"])
    assert isinstance(result.exception, UserError) and "--interval-images must be at least 2" in str(result.exception)
    assert not (tmp_path / "out").exists()
