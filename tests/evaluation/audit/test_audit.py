"""The audit (issue 11): membership inference, relearning, the tell, per-image forgetting, ours-substitute."""
import copy
import hashlib
import json
import re
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from i2i_unlearn.cli import app, main
from i2i_unlearn.config import DataConfig, TaskConfig
from i2i_unlearn.data import ImageSet, load_split
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.audit import (AuditSets, attack_scores, audit_sets, conditions, linear_probe,
                                          membership_audit, restoration_errors, roc_summary)
from i2i_unlearn.evaluation.evaluator import load_evaluator
from i2i_unlearn.models.generation import generate_outputs
from i2i_unlearn.methods import Batch, get_method
from i2i_unlearn.methods.ours_substitute import nearest_visible
from i2i_unlearn.models import build_model, load_model
from i2i_unlearn.evaluation.audit.relearn import (
    RelearnConfig, attack_images, band, mean_curve, quantized, relearn_curves, relearning_paces)
from i2i_unlearn.tasks import make_mask, noise_image
from i2i_unlearn.unlearn import unlearn
from conftest import TINY_DIFFUSION, TINY_MAE, tiny_unlearn_config

runner = CliRunner()
CENTER = TaskConfig("center-inpaint", 0.5)


SMALL_DATA = DataConfig(test_per_class=10, val_per_class=4)   # small held-out parts: a cheap evaluation


pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py


@pytest.fixture(scope="module")
def split():
    return load_split(DataConfig())


@pytest.fixture(scope="module")
def small_split_model_dir(tmp_path_factory):
    """A tiny MAE trained on a split with 10 test and 4 validation images per class."""
    from i2i_unlearn.train import train
    from conftest import tiny_train_config
    config = tiny_train_config()
    config.data = SMALL_DATA
    out = tmp_path_factory.mktemp("audit") / "small-split-mae"
    train(config, out)
    return out


def _folder_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _sets(members: ImageSet, non_members: ImageSet) -> AuditSets:
    return AuditSets(members, non_members, ["Cat"], "classes", "test")


# --- membership inference -------------------------------------------------------------------------

def test_the_attack_is_near_chance_on_two_disjoint_sets_of_never_seen_images(tiny_model_dir, split):
    model = load_model(tiny_model_dir)
    order = torch.randperm(len(split.test), generator=torch.Generator().manual_seed(0))
    a, b = split.test.subset(order[:48]), split.test.subset(order[48:96])
    result = membership_audit({"m": model}, _sets(a, b), masks=[CENTER, TaskConfig("outpaint", 0.5)])
    assert abs(result["models"]["m"]["attack"]["auc"] - 0.5) < 0.15
    roc = result["models"]["m"]["attack"]["roc"]
    assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1 and len(roc["fpr"]) == len(roc["tpr"])


def test_the_attack_finds_the_images_a_model_memorised(split):
    """A tiny MAE trained on 4 images until it restores them far better than any never-seen one."""
    torch.manual_seed(0)
    model = build_model({**TINY_MAE, "linear_init": "xavier"})
    members, non_members = split.test.subset(range(4)), split.test.subset(range(4, 28))
    conds = conditions(model, [CENTER])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    mask = make_mask(CENTER, len(members), 32, model.mask_grid)
    for step in range(1, 1001):
        model.train()
        loss = model.training_loss(members.images, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 and restoration_errors(model, members, conds).max() < \
                0.5 * restoration_errors(model, non_members, conds, stream=1).min():
            break
    stranger = build_model({**TINY_MAE, "linear_init": "xavier"})   # never trained: a reference without them
    result = membership_audit({"memoriser": model, "stranger": stranger}, _sets(members, non_members),
                              reference="stranger", masks=[CENTER])["models"]
    assert result["memoriser"]["attack"]["auc"] > 0.95
    assert result["memoriser"]["attack"]["tpr_at_0.05_fpr"] > 0.7
    assert result["memoriser"]["calibrated"]["auc"] > 0.9
    assert result["stranger"]["calibrated"] is None        # the reference is not calibrated against itself


def test_calibration_against_an_identical_reference_leaves_nothing_to_find():
    errors = torch.rand(10, 3) + 0.1
    assert torch.equal(attack_scores(errors, errors), torch.zeros(10, dtype=torch.float64))
    summary = roc_summary(torch.zeros(10), torch.zeros(30))
    assert summary["auc"] == 0.5 and summary["tpr_at_0.01_fpr"] == 0.0


def test_diffusion_scores_several_timesteps_and_every_model_sees_the_same_inputs(tiny_model_dir, split):
    torch.manual_seed(0)
    model = build_model(TINY_DIFFUSION)
    conds = conditions(model, [CENTER], timesteps=(10, 400))
    assert [t for _, t in conds] == [10, 400]
    images = split.test.subset(range(3))
    first, again = restoration_errors(model, images, conds), restoration_errors(copy.deepcopy(model), images, conds)
    assert torch.equal(first, again) and not torch.equal(first[:, 0], first[:, 1])
    with pytest.raises(UserError, match="timesteps must lie in"):
        conditions(model, [CENTER], timesteps=(5000,))
    assert [t for _, t in conditions(load_model(tiny_model_dir), [CENTER])] == [None]


# --- the tell ------------------------------------------------------------------------------------

def test_the_probe_is_near_chance_on_two_halves_of_one_set_of_outputs(tiny_model_dir, tiny_evaluator_dir, split):
    evaluator = load_evaluator(tiny_evaluator_dir)
    outputs, masks = generate_outputs(load_model(tiny_model_dir), split.test.images[:240], CENTER)
    features = evaluator.features(outputs)
    order = torch.randperm(len(features), generator=torch.Generator().manual_seed(1))
    chance = linear_probe(features[order[:120]], features[order[120:]], folds=5)
    assert abs(chance["accuracy"] - 0.5) < 0.1
    # and it is an instrument: the same outputs with a noise-filled hole are told apart
    noisy = outputs * (1 - masks) + masks * noise_image(outputs, "uniform", torch.Generator().manual_seed(0))
    assert linear_probe(features, evaluator.features(noisy), folds=5, paired=True)["accuracy"] > 0.9


def test_the_permutation_test_finds_a_real_difference_and_not_an_absent_one():
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(60, 8, generator=generator)
    same = base + 0.5 * torch.randn(60, 8, generator=generator)     # the same inputs, no systematic difference
    shifted = base + 0.5 * torch.randn(60, 8, generator=generator) + 3.0 * torch.tensor([1.0] + [0.0] * 7)
    told = linear_probe(shifted, base, folds=4, paired=True, permutations=40)
    assert told["accuracy"] > 0.75 and told["permutation"]["p_value"] == round(1 / 41, 4)
    untold = linear_probe(same, base, folds=4, paired=True, permutations=40)
    assert untold["permutation"]["p_value"] > 0.1
    assert untold["permutation"]["null_mean"] == pytest.approx(0.5, abs=0.06)


def test_the_tells_floor_is_the_mean_probe_between_retrained_seeds_and_every_model_is_read_against_it(
        tiny_evaluator_dir):
    from i2i_unlearn.evaluation.audit.probe import FLOOR_MARGIN, tell_audit
    from i2i_unlearn.evaluation.scoring import Seen
    evaluator = load_evaluator(tiny_evaluator_dir)
    generator = torch.Generator().manual_seed(0)
    retrained = torch.rand(40, 1, 32, 32, generator=generator)

    def another_seed(noise):
        return (retrained + noise * torch.randn(40, 1, 32, 32, generator=generator)).clamp(0, 1)
    outputs = {"retrained": retrained, "retrained-1": another_seed(0.02), "retrained-2": another_seed(0.2),
               "grey": torch.full_like(retrained, 0.5)}
    seen = {name: Seen.of(evaluator, images) for name, images in outputs.items()}
    tell, floor = tell_audit(evaluator, seen, reference="retrained", forget_indices=[2], folds=4,
                             floor_models=["retrained", "retrained-1", "retrained-2"], permutations=10)
    pair = [tell[name]["probe_vs_reference"]["accuracy"] for name in ("retrained-1", "retrained-2")]
    assert floor["models"] == ["retrained-1", "retrained-2"] and floor["accuracies"] == pair   # not the reference
    assert floor["accuracy"] == round(sum(pair) / 2, 4) and floor["margin"] == FLOOR_MARGIN
    grey = tell["grey"]["probe_vs_reference"]
    assert grey["above_floor"] == round(grey["accuracy"] - floor["accuracy"], 4) > FLOOR_MARGIN
    assert grey["within_floor_margin"] is False and tell["retrained"]["probe_vs_reference"] is None


# --- relearning ----------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["mae", "vqgan", "diffusion"])   # every attack of the robustness audit, per family
def test_relearning_starts_from_the_given_model_and_never_writes_into_it(family, tiny_model_dirs, tiny_evaluator_dir,
                                                                         split):
    tiny_model_dir = tiny_model_dirs[family]
    before = _folder_hash(tiny_model_dir)
    model = load_model(tiny_model_dir)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    evaluator = load_evaluator(tiny_evaluator_dir)
    cats = split.train.subset(torch.nonzero(split.train.labels == 2).flatten()[:4])
    held_out = split.test.subset(torch.nonzero(split.test.labels == 2).flatten()[:10])
    dogs = split.train.subset(torch.nonzero(split.train.labels == 4).flatten()[:4])
    config = RelearnConfig(steps=3, images=4, batch_size=4, lr=1e-3, eval_steps=(0, 1, 3), attack_seeds=(0,),
                           quantize_bits=(8,))
    result = relearn_curves(model, {"forget": cats, "retain": dogs}, held_out, evaluator, [2], config, CENTER)
    fresh, _ = generate_outputs(load_model(tiny_model_dir), held_out.images, CENTER)
    from i2i_unlearn.evaluation import metrics
    for variant in ("whole", "decoder-frozen", "retain-finetune"):
        curve = result[variant]["curve"]
        assert [p["step"] for p in curve] == [0, 1, 3]
        assert curve[0]["recognition"] == metrics.recognition_rate(evaluator, fresh, [2])   # starts from the model
        assert curve[-1]["hidden_mse"] != curve[0]["hidden_mse"]                            # and trains a copy
    assert result["whole"]["trainable_parameters"] > result["decoder-frozen"]["trainable_parameters"]
    assert result["whole"]["curve"] != result["retain-finetune"]["curve"]   # other images: another curve
    assert [p["step"] for p in result["quantize-8"]["curve"]] == [0]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())         # the model is unchanged
    assert _folder_hash(tiny_model_dir) == before                                         # its folder too


def test_relearning_paces_tell_hidden_from_removed_knowledge_when_the_reference_starts_above_half():
    # the shipped MAE's audit, in small: the retrained model's frame keeps Cat at 0.70, above half the
    # original's 0.86, so "steps to half" is 0 for it and says nothing; the way back to the original's
    # own level separates a model that hid the class (back at step 25) from one that never knew it
    def curve(*recognition):
        return {"curve": [{"step": s, "recognition": r} for s, r in zip((0, 5, 10, 25, 50), recognition)]}
    record = {"original": "original", "reference": "retrained", "models": {
        "original": {"variants": {"whole": curve(0.86, 0.77, 0.86, 0.90, 0.86)}},
        "hid": {"variants": {"whole": curve(0.13, 0.45, 0.67, 0.90, 0.89)}},
        "retrained": {"variants": {"whole": curve(0.70, 0.80, 0.75, 0.80, 0.78)}}}}
    relearning_paces(record)
    paces = {name: entry["variants"]["whole"] for name, entry in record["models"].items()}
    assert record["half_original_recognition"] == 0.43 and record["original_return_level"] == round(0.86 * 0.95, 4)
    assert [paces[n]["steps_to_half_original"] for n in ("original", "hid", "retrained")] == [0, 5, 0]
    assert [paces[n]["steps_to_original"] for n in ("original", "hid", "retrained")] == [0, 25, None]
    assert paces["hid"]["final_recognition"] == 0.89 and paces["hid"]["speedup_vs_reference"] is None


def test_relearning_attack_seeds_draw_their_own_images_and_batches_and_every_curve_is_recorded(
        tiny_model_dir, tiny_evaluator_dir, split):
    cats = split.train.subset(torch.nonzero(split.train.labels == 2).flatten()[:40])
    picks = [attack_images(cats, 8, seed).ids for seed in (0, 1, 2)]
    assert picks[0] == attack_images(cats, 8, 0).ids and len({tuple(p) for p in picks}) == 3
    held_out = split.test.subset(torch.nonzero(split.test.labels == 2).flatten()[:10])
    config = RelearnConfig(steps=2, images=4, batch_size=4, lr=1e-3, eval_steps=(0, 2), attack_seeds=(0, 1),
                           variants=("whole",), quantize_bits=())
    result = relearn_curves(load_model(tiny_model_dir), {"forget": cats}, held_out, load_evaluator(tiny_evaluator_dir),
                            [2], config, CENTER)["whole"]
    seeds = result["seeds"]
    assert set(seeds) == {"0", "1"} and seeds["0"][-1]["hidden_mse"] != seeds["1"][-1]["hidden_mse"]
    assert result["curve"] == mean_curve([seeds["0"], seeds["1"]])
    assert result["curve"][-1]["hidden_mse"] == pytest.approx((seeds["0"][-1]["hidden_mse"]
                                                               + seeds["1"][-1]["hidden_mse"]) / 2, abs=1e-6)


def test_the_retrained_band_spans_every_retrained_seed_and_attack_seed_and_the_area_is_hand_computed():
    def result(*seed_curves):
        curves = {str(i): [{"step": s, "recognition": r} for s, r in zip((0, 10, 50), c)]
                  for i, c in enumerate(seed_curves)}
        return {"variants": {"whole": {"seeds": curves, "curve": mean_curve(list(curves.values()))}}}
    record = {"models": {"retrained": result((0.2, 0.3, 0.4), (0.1, 0.5, 0.3)),
                         "retrained-1": result((0.3, 0.2, 0.5), (0.2, 0.2, 0.2)),
                         "hid": result((0.1, 0.6, 0.9), (0.1, 0.8, 0.9))}}
    out = band(record, ["retrained", "retrained-1"])
    assert out["bands"]["whole"] == [{"step": 0, "lo": 0.1, "hi": 0.3}, {"step": 10, "lo": 0.2, "hi": 0.5},
                                     {"step": 50, "lo": 0.2, "hi": 0.5}]
    hid = record["models"]["hid"]["variants"]["whole"]
    # its mean: 0.1, 0.7, 0.9; outside by 0, 0.2, 0.4 -> trapezoids (10 x 0.1 + 40 x 0.3) / 50
    assert hid["band_area"] == pytest.approx((10 * 0.1 + 40 * 0.3) / 50) and hid["above_band"] is True
    # a member is read against the others' band (held out of its own): retrained's mean 0.15, 0.4, 0.35
    # against retrained-1's seeds (0.2-0.3, 0.2, 0.2-0.5): below by 0.05, above by 0.2, inside
    held_out = record["models"]["retrained"]["variants"]["whole"]
    assert held_out["band_held_out"] and held_out["above_band"] is True
    assert held_out["band_area"] == pytest.approx((10 * (0.05 + 0.2) / 2 + 40 * (0.2 + 0.0) / 2) / 50)
    assert not record["models"]["hid"]["variants"]["whole"]["band_held_out"]


def test_a_point_within_its_own_measurement_error_of_the_band_counts_as_inside():
    """Each recognition is measured on eval_images images (and averaged over the curve's attack seeds): a point
    within 1.96 binomial standard errors of the band is inside; beyond, only the excess counts."""
    import math

    def result(*seed_curves):
        curves = {str(i): [{"step": s, "recognition": r} for s, r in zip((0, 50), c)] for i, c in enumerate(seed_curves)}
        return {"variants": {"whole": {"seeds": curves, "curve": mean_curve(list(curves.values()))}}}
    record = {"models": {"retrained": result((0.3, 0.5), (0.3, 0.5)), "retrained-1": result((0.3, 0.5), (0.3, 0.5)),
                         "near": result((0.3, 0.55), (0.3, 0.55)), "far": result((0.3, 0.7), (0.3, 0.7))}}
    out = band(record, ["retrained", "retrained-1"], eval_images=100)
    near, far = (record["models"][n]["variants"]["whole"] for n in ("near", "far"))
    assert near["band_area"] == 0 and near["above_band"] is False   # 0.05 above, allowance 0.069
    excess = 0.2 - 1.96 * math.sqrt(0.7 * 0.3 / 200)                  # two attack seeds of 100 images
    assert far["band_area"] == pytest.approx((0 + excess) / 2, abs=1e-6) and far["above_band"] is True
    assert out["measurement_allowance"]["eval_images"] == 100
    band(record, ["retrained", "retrained-1"])   # the count unknown (an older record): no allowance
    assert record["models"]["near"]["variants"]["whole"]["band_area"] == pytest.approx(0.025)


def test_quantization_rounds_each_output_channel_to_its_levels_and_leaves_the_model(tiny_model_dir):
    model = load_model(tiny_model_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    errors = {}
    for bits in (8, 4):
        copy_ = quantized(model, bits)
        weight = dict(copy_.named_parameters())[next(n for n, p in model.named_parameters() if p.dim() >= 2)]
        assert all(len(torch.unique(row)) <= 2 ** bits - 1 for row in weight.detach().flatten(1))
        errors[bits] = max((a - b).abs().max().item() for (_, a), (_, b)
                           in zip(model.named_parameters(), copy_.named_parameters()))
    assert 0 < errors[8] < errors[4]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


# --- the command ---------------------------------------------------------------------------------

def test_audit_command_writes_json_and_figures_and_leaves_the_models_alone(tiny_model_dir, tiny_evaluator_dir,
                                                                         tmp_path):
    before = _folder_hash(tiny_model_dir)
    out = tmp_path / "audit"
    result = runner.invoke(app, ["audit", "--model", f"original={tiny_model_dir}", "--model", f"twin={tiny_model_dir}",
                                 "--reference-model", "twin", "--forget-classes", "Cat", "--out", str(out),
                                 "--evaluator", str(tiny_evaluator_dir), "--max-images", "10", "--probe-folds", "2",
                                 "--relearn-steps", "2", "--relearn-images", "4", "--relearn-batch-size", "4",
                                 "--relearn-eval", "0,2", "--relearn-seeds", "0,1", "--quantize-bits", "8",
                                 "--band-model", "twin"])
    assert result.exit_code == 0, result.output
    audit = json.loads((out / "audit.json").read_text())
    assert audit["reference"] == "twin"
    relearning = audit["relearning"]
    assert relearning["band"]["members"] == ["twin"]
    assert set(relearning["models"]["original"]["variants"]) == {"whole", "decoder-frozen", "retain-finetune",
                                                                 "quantize-8"}
    # the same weights as the band's model: inside it at every step of every attack
    assert all(r["band_area"] == 0 for r in relearning["models"]["original"]["variants"].values())
    assert audit["forget"]["members"]["count"] == 10 and audit["forget"]["non_members"]["count"] == 10
    assert audit["forget"]["members"]["classes"] == ["Cat"] == audit["forget"]["non_members"]["classes"]
    entry = audit["membership"]["models"]["original"]
    assert 0 <= entry["attack"]["auc"] <= 1 and "tpr_at_0.01_fpr" in entry["attack"]
    assert len(audit["membership"]["conditions"]) == 5
    assert entry["calibrated"]["auc"] == 0.5     # against an identical reference nothing is left to find
    tell = audit["tell"]["models"]["original"]
    assert tell["probe_vs_reference"]["accuracy"] == 0.5 and audit["tell"]["models"]["twin"]["probe_vs_reference"] is None
    assert 0 <= tell["no_object_share"] <= 1 and 0 <= tell["low_confidence_share"] <= 1
    curve = audit["relearning"]["models"]["original"]["variants"]["whole"]["curve"]
    assert [p["step"] for p in curve] == [0, 2]
    for name in audit["images"].values():
        assert (out / name).stat().st_size > 1000
    assert _folder_hash(tiny_model_dir) == before
    assert "membership inference" in result.output


@pytest.mark.parametrize("args, message", [
    (["--forget-classes", "Unicorn"], "unknown class name.*known: Bear, Bird, Cat"),
    (["--forget-files", "EMPTY"], "the forget set is empty"),
    (["--forget-files", "HELD_OUT"], "held-out validation or test images"),
    (["--forget-classes", "Cat", "--reference-model", "nobody"], "neither a --model name nor a folder; the names given: tiny-mae"),
    (["--forget-classes", "Cat", "--reference-model", "x=nowhere"], "model directory not found"),
    (["--forget-classes", "Cat", "--relearn-steps", "2", "--relearn-lr", "0"], "learning rate must be > 0"),
    ([], "the forget set is empty"),
])
def test_audit_bad_input_is_refused_on_one_line_and_writes_nothing(tiny_model_dir, tiny_evaluator_dir, split,
                                                                  tmp_path, args, message):
    (tmp_path / "empty.txt").write_text("\n")
    (tmp_path / "held_out.txt").write_text(split.test.ids[0] + "\n")
    args = [str(tmp_path / "empty.txt") if a == "EMPTY" else str(tmp_path / "held_out.txt") if a == "HELD_OUT" else a
            for a in args]
    out = tmp_path / "out"
    result = runner.invoke(app, ["audit", "--model", str(tiny_model_dir), "--out", str(out), "--evaluator",
                                 str(tiny_evaluator_dir), *args])
    assert isinstance(result.exception, UserError), result.output
    assert re.search(message, str(result.exception))
    assert "\n" not in str(result.exception) and not out.exists()


def test_a_missing_model_exits_2_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["i2i-unlearn", "audit", "--model", str(tmp_path / "nope"), "--out",
                                      str(tmp_path / "out"), "--forget-classes", "Cat"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: model directory not found") and error.count("\n") == 1


# --- per-image forgetting ------------------------------------------------------------------------

def test_a_file_list_is_audited_and_evaluated_on_the_forgotten_images(small_split_model_dir, tiny_evaluator_dir,
                                                                      tmp_path):
    from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
    split = load_split(SMALL_DATA)
    dogs = [split.train.ids[i] for i in torch.nonzero(split.train.labels == 4).flatten()[:5].tolist()]
    bears = [split.train.ids[i] for i in torch.nonzero(split.train.labels == 0).flatten()[:3].tolist()]
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(dogs + bears) + "\n")
    sets = audit_sets(SMALL_DATA, forget_files=ids)
    assert sorted(sets.members.ids) == sorted(dogs + bears) and sets.kind == "files"
    assert sets.forget_class_names == ["Bear", "Dog"]
    assert set(sets.non_members.labels.tolist()) == {0, 4} and not set(sets.non_members.ids) & set(split.train.ids)

    unlearned = tmp_path / "unlearned"
    unlearn(small_split_model_dir, tiny_unlearn_config(forget_classes=[], forget_files=str(ids), steps=2), unlearned)
    ids.unlink()   # the model folder's forgotten_ids.sha256 is enough from now on
    results = evaluate_model_dirs({"original": small_split_model_dir, "unlearned": unlearned}, CENTER,
                                  tiny_evaluator_dir, tmp_path / "eval", split="val")
    assert results["forget_kind"] == "files" and results["sets"]["forget"]["count"] == 8
    assert results["sets"]["forget"]["source"] == "train (the forgotten images)"
    assert results["sets"]["retain"]["count"] == len(split.val) == 40    # every never-seen image, every class
    assert {t["name"] for t in results["targets"]} == {"retain FID <= 1.15 x original",
                                                      "retain similarity >= 0.97 x original",
                                                      "original retain FID <= 1/4 of mean-image fill"}
    recorded = audit_sets(SMALL_DATA, forgotten_id_hashes=frozenset(
        (unlearned / "forgotten_ids.sha256").read_text().split()))
    assert sorted(recorded.members.ids) == sorted(dogs + bears)


# --- ours with a substitute target ---------------------------------------------------------------

def test_the_substitute_target_is_the_teachers_encoding_of_the_closest_retain_image(tiny_model_dir, split):
    teacher = load_model(tiny_model_dir)
    cats = split.train.images[split.train.labels == 2][:3]
    retain = split.train.images[split.train.labels == 4][:5].clone()
    mask = make_mask(CENTER, 3, 32, teacher.mask_grid)
    # retain image 3 equals cat 1 outside the hole and differs inside it: cat 1's substitute
    retain[3] = cats[1] * (1 - mask[1]) + mask[1] * retain[3]
    assert nearest_visible(cats, mask, retain)[1] == 3
    generator = torch.Generator().manual_seed(0)
    forget = Batch(cats, mask, teacher.sample_context(cats, mask, generator), noise_image(cats, "batch-gaussian"))
    retain_mask = make_mask(CENTER, 5, 32, teacher.mask_grid)
    retain_batch = Batch(retain, retain_mask, teacher.sample_context(retain, retain_mask, generator))
    method = get_method("ours-substitute", tiny_unlearn_config(method="ours-substitute"))
    target = method.substitute_target(teacher, forget, retain_batch)
    chosen = retain[nearest_visible(cats, mask, retain)]
    assert torch.equal(target, teacher.encode(chosen, mask, forget.ctx))
    assert not torch.allclose(target, teacher.encode_noise(cats, forget.noise, mask, forget.ctx))
    # the student starts as the teacher: its retain term is zero, its forget term is not
    terms = method.loss(copy.deepcopy(teacher), teacher, forget, retain_batch, generator)
    assert terms["retain"].item() == 0.0 and terms["forget"].item() > 0
