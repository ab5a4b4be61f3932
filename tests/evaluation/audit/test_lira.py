"""Per-example likelihood-ratio membership inference (evaluation/audit/lira.py) where the answer is known."""
import pytest
import torch

from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.audit.lira import (attack_summary, fit_gaussians, leave_one_out_null, likelihood_ratio,
                                               lira_audit, restoration_scores)

IMAGES, CONDITIONS = 300, 3


def _models(count: int, shift: float, seed: int, difficulty: torch.Tensor, noise: float = 0.2) -> torch.Tensor:
    """Scores of `count` models: each image's own difficulty (shared by every model), plus `shift` if the models
    saw it, plus per-model noise."""
    generator = torch.Generator().manual_seed(seed)
    return difficulty + shift + noise * torch.randn(count, IMAGES, CONDITIONS, generator=generator, dtype=torch.float64)


@pytest.fixture(scope="module")
def difficulty():
    # images differ far more from each other than a member from a non-member: a global threshold cannot work
    return 3.0 * torch.randn(IMAGES, CONDITIONS, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_a_model_that_memorised_its_members_is_caught_near_tpr_1(difficulty):
    in_shadows, out_shadows = _models(4, 0.6, 1, difficulty), _models(4, 0.0, 2, difficulty)
    audited = {"memorised": _models(1, 0.6, 3, difficulty)[0], "never saw them": _models(1, 0.0, 4, difficulty)[0]}
    result = lira_audit(audited, in_shadows, out_shadows, bootstrap=200)
    caught, clean = result["models"]["memorised"], result["models"]["never saw them"]
    assert caught["auc"] > 0.97 and caught["tpr_at_0.01_fpr"] > 0.8
    assert caught["intervals"]["tpr_at_0.01_fpr"][0] > 0.6
    assert 0.4 < clean["auc"] < 0.6 and clean["tpr_at_0.01_fpr"] < 0.05
    lower, upper = clean["intervals"]["auc"]
    assert lower < 0.5 < upper or abs(clean["auc"] - 0.5) < 0.05
    # its ROC: from (0, 0) to (1, 1), never falling, and high already at a false positive rate of 1 %
    for entry in (caught, clean):
        fpr, tpr = entry["roc"]["fpr"], entry["roc"]["tpr"]
        assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
        assert all(b >= a for a, b in zip(fpr, fpr[1:])) and all(b >= a for a, b in zip(tpr, tpr[1:]))
    assert max(t for f, t in zip(caught["roc"]["fpr"], caught["roc"]["tpr"]) if f <= 0.01) > 0.8
    assert max(t for f, t in zip(clean["roc"]["fpr"], clean["roc"]["tpr"]) if f <= 0.01) < 0.1
    # the per-image fit is what catches it: one global threshold on the raw score has almost no power here
    raw = attack_summary(audited["memorised"].mean(dim=1), out_shadows.mean(dim=2), bootstrap=0)
    assert raw["auc"] < 0.65


def test_identical_in_and_out_shadows_give_auc_near_a_half(difficulty):
    in_shadows, out_shadows = _models(4, 0.0, 5, difficulty), _models(4, 0.0, 6, difficulty)
    audited = {"any": _models(1, 0.0, 7, difficulty)[0]}
    summary = lira_audit(audited, in_shadows, out_shadows, bootstrap=200)["models"]["any"]
    assert abs(summary["auc"] - 0.5) < 0.08 and summary["tpr_at_0.01_fpr"] < 0.06


def test_the_null_scores_each_out_shadow_by_a_fit_without_it(difficulty):
    in_shadows, out_shadows = _models(3, 0.6, 8, difficulty), _models(3, 0.0, 9, difficulty)
    null = leave_one_out_null(in_shadows, out_shadows)
    assert null.shape == (3, IMAGES)
    held_out = likelihood_ratio(out_shadows[1], fit_gaussians(in_shadows, out_shadows[[0, 2]]))
    assert torch.equal(null[1], held_out)
    with pytest.raises(UserError, match="at least 3 OUT shadows"):
        leave_one_out_null(in_shadows, out_shadows[:2])


def test_the_likelihood_ratio_matches_a_hand_computed_value():
    in_scores = torch.tensor([[[1.0]], [[3.0]]], dtype=torch.float64)     # mean 2, sd sqrt(2)
    out_scores = torch.tensor([[[0.0]], [[2.0]]], dtype=torch.float64)    # mean 1, sd sqrt(2)
    fit = fit_gaussians(in_scores, out_scores)
    value = float(likelihood_ratio(torch.tensor([[2.0]], dtype=torch.float64), fit)[0])
    # log N(2; 2, sqrt2) - log N(2; 1, sqrt2) = 0 - (-(1/2) (1/sqrt2)^2) = 0.25
    assert value == pytest.approx(0.25)
    assert torch.allclose(restoration_scores(torch.tensor([1.0, torch.e])), torch.tensor([0.0, -1.0],
                                                                                          dtype=torch.float64))


def test_bootstrap_resamples_are_the_same_for_every_model(difficulty):
    in_shadows, out_shadows = _models(3, 0.3, 10, difficulty), _models(3, 0.0, 11, difficulty)
    audited = _models(1, 0.3, 12, difficulty)[0]
    first = lira_audit({"a": audited}, in_shadows, out_shadows, bootstrap=50, seed=4)
    again = lira_audit({"a": audited}, in_shadows, out_shadows, bootstrap=50, seed=4)
    assert first == again


def test_the_audit_of_a_tiny_model_with_shadows_end_to_end(tiny_evaluator_dir, tmp_path):
    """Real tiny MAEs: two trained on every class (IN), four retrained without Cat (OUT); the original (another
    seed of the IN recipe) and a held-out OUT seed are audited, each with its per-example attack and intervals;
    an audited model given as a shadow is refused."""
    import json
    from typer.testing import CliRunner
    from conftest import tiny_train_config
    from i2i_unlearn.cli import app
    from i2i_unlearn.config import UnlearnConfig
    from i2i_unlearn.train import train
    from i2i_unlearn.unlearn import unlearn
    models = {}
    for seed in (0, 1, 2):
        config = tiny_train_config(steps=6)
        config.seed = seed
        train(config, tmp_path / f"in{seed}")
        models[f"in{seed}"] = tmp_path / f"in{seed}"
    for seed in range(4):
        unlearn(models["in0"], UnlearnConfig(method="retrain", forget_classes=["Cat"], seed=seed),
                tmp_path / f"out{seed}")
    shadows = ["--shadow-in", str(models["in1"]), "--shadow-in", str(models["in2"]),
               *[arg for s in (0, 1, 2) for arg in ("--shadow-out", str(tmp_path / f"out{s}"))]]
    base = ["audit", "--model", f"original={models['in0']}", "--model", f"held-out retrained={tmp_path / 'out3'}",
            "--forget-classes", "Cat", "--evaluator", str(tiny_evaluator_dir), "--max-images", "12",
            "--probe-folds", "2"]
    result = CliRunner().invoke(app, [*base, *shadows, "--out", str(tmp_path / "audit")])
    assert result.exit_code == 0, result.output
    lira = json.loads((tmp_path / "audit" / "audit.json").read_text())["lira"]
    assert lira["shadows"] == {"in": 2, "out": 3} and lira["members"] == 12
    assert set(lira["models"]) == {"original", "held-out retrained"}
    for entry in lira["models"].values():
        assert 0 <= entry["auc"] <= 1 and entry["null_models"] == 3 and entry["images"] == 12
        low, high = entry["intervals"]["tpr_at_0.01_fpr"]
        assert low <= entry["tpr_at_0.01_fpr"] <= high
    assert "per-example attack (LiRA" in result.output
    audit = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert audit["images"]["lira_roc"] == "lira_roc.png" and (tmp_path / "audit" / "lira_roc.png").is_file()
    refused = CliRunner().invoke(app, [*base, *shadows, "--shadow-out", str(tmp_path / "out3"),
                                       "--out", str(tmp_path / "again")])
    assert "has the weights of the audited model 'held-out retrained'" in str(refused.exception)
    assert not (tmp_path / "again").exists()


def test_the_audit_cache_keeps_a_value_by_its_key_and_a_tensor_exactly(tmp_path):
    from i2i_unlearn.evaluation.audit.cache import cached_json, cached_tensor
    calls = []

    def compute():
        calls.append(1)
        return torch.tensor([0.1, 1 / 3, -2.5e-8], dtype=torch.float64)
    first = cached_tensor(tmp_path, "lira", {"model": "a", "seed": 0}, compute)
    again = cached_tensor(tmp_path, "lira", {"seed": 0, "model": "a"}, compute)   # the same key, in any order
    assert len(calls) == 1 and again.dtype == torch.float64 and torch.equal(first, again)
    cached_tensor(tmp_path, "lira", {"model": "b", "seed": 0}, compute)   # another model: computed
    assert len(calls) == 2 and len(list(tmp_path.glob("lira-*.json"))) == 2
    assert cached_json(None, "relearn", {}, lambda: {"x": 1}) == {"x": 1}   # no folder: nothing kept
    assert not list(tmp_path.glob("relearn-*.json"))
