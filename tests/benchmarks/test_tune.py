"""bench/tune.py (run by benchmarks/tune.py): the same budget per method, choices by the declared rule,
validation images only."""
import json
from pathlib import Path

import pytest
import torch
import yaml

import i2i_unlearn.bench.tune as tune
from i2i_unlearn.config import DataConfig, UnlearnConfig, load_yaml
from i2i_unlearn.data import load_split
from i2i_unlearn.errors import UserError



def _spec(tmp_path, model_dir, evaluator_dir, grid):
    base = {"steps": 2, "batch_size": 8, "checkpoint_every": 2, "log_every": 1,
            "tasks": [{"name": "center-inpaint", "ratio": 0.5}], "optim": {"lr": 0.001, "warmup_steps": 0}}
    return {"model": str(model_dir), "evaluator": str(evaluator_dir), "base": base, "forget_classes": ["Cat"],
            "rule": {"retain_fid_max_x": 1.15, "retain_similarity_min_x": 0.97}, "grid": grid,
            "write": {m: str(tmp_path / f"chosen-{m}.yaml") for m in grid}}


def _row_keys(images: torch.Tensor) -> set[bytes]:
    return {(row * 255).round().to(torch.uint8).numpy().tobytes() for row in images}


def test_tuning_scores_only_validation_images(tiny_model_dir, tiny_evaluator_dir, tmp_path, monkeypatch):
    seen = []
    real_generate = tune.generate_outputs

    def spy(model, images, task, seed=0, batch_size=128):
        seen.append(images.clone())
        return real_generate(model, images, task, seed, batch_size)
    monkeypatch.setattr(tune, "generate_outputs", spy)
    spec = _spec(tmp_path, tiny_model_dir, tiny_evaluator_dir,
                 {"ours": {"alpha": [0.1, 1.0]}, "max-loss": {"optim.lr": [1e-4, 1e-3]}})
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)

    split = load_split(DataConfig())
    scored = _row_keys(torch.cat(seen))
    assert scored and scored <= _row_keys(split.val.images)
    assert not scored & _row_keys(split.test.images)
    assert record["scored_split"] == "val" and record["split"]["val"]["count"] == 500
    # every trial recorded, 2 per method, with its knobs applied
    assert sorted((t["method"], json.dumps(t["overrides"])) for t in record["trials"]) == sorted([
        ("ours", '{"alpha": 0.1}'), ("ours", '{"alpha": 1.0}'),
        ("max-loss", '{"optim": {"lr": 0.0001}}'), ("max-loss", '{"optim": {"lr": 0.001}}')])
    lrs = {t["config"]["optim"]["lr"] for t in record["trials"] if t["method"] == "max-loss"}
    assert lrs == {1e-4, 1e-3}
    # the choice follows the rule and its knobs are written to the method's config file
    for method in ("ours", "max-loss"):
        trials = [t for t in record["trials"] if t["method"] == method]
        chosen, _ = tune.choose(trials, spec["rule"])
        assert record["chosen"][method]["key"] == chosen["key"]
        written = load_yaml(UnlearnConfig, spec["write"][method])
        assert written.method == method and written.steps == 2
        for key, value in chosen["overrides"].items():
            assert (getattr(written, key) if not isinstance(value, dict)
                    else getattr(written.optim, next(iter(value)))) == (value if not isinstance(value, dict)
                                                                       else next(iter(value.values())))
    # a second run re-runs nothing
    monkeypatch.setattr(tune, "unlearn", lambda *a, **k: pytest.fail("a finished trial was re-run"))
    tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)


def test_the_rule_prefers_most_forgetting_within_the_retain_bound():
    rule = {"retain_fid_max_x": 1.15, "retain_similarity_min_x": 0.97}

    def trial(key, fid_x, sim_x, recognition, forget_fid):
        return {"key": key, "ratios": {"retain_fid_x": fid_x, "retain_similarity_x": sim_x},
                "scores": {"forget": {"recognition": recognition, "fid": forget_fid}}}
    trials = [trial("forgets-most-but-damages", 1.5, 0.99, 0.0, 200), trial("keeps", 1.1, 0.98, 0.4, 50),
              trial("keeps-and-forgets", 1.14, 0.975, 0.2, 60), trial("tie-more-fid", 1.0, 0.99, 0.2, 90)]
    chosen, keeps = tune.choose(trials, rule)
    assert chosen["key"] == "tie-more-fid" and keeps
    chosen, keeps = tune.choose([trials[0], trial("less-damage", 1.3, 0.99, 0.5, 10)], rule)
    assert chosen["key"] == "less-damage" and not keeps


def test_every_method_gets_the_same_budget(tmp_path):
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump({"grid": {"ours": {"alpha": [0.1, 0.2]}, "max-loss": {"alpha": [0.1]}}}))
    with pytest.raises(UserError, match="same tuning budget"):
        tune.load_tune_config(path)


def test_a_longer_trial_continues_the_shorter_one(tiny_model_dir, tiny_evaluator_dir, tmp_path):
    from safetensors.torch import load_file
    spec = _spec(tmp_path, tiny_model_dir, tiny_evaluator_dir, {"ours": {"steps": [2, 4]}})
    spec["base"]["optim"]["schedule"] = "constant"
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)
    short, long = sorted(record["trials"], key=lambda t: t["config"]["steps"])
    assert long["continued_from"] == short["key"]
    # continuing from step 2 ends exactly where an uninterrupted 4-step run ends
    straight = tmp_path / "straight"
    tune.unlearn(tiny_model_dir, tune.trial_config(spec["base"], "ours", {"steps": 4}, ["Cat"]), straight)
    continued = load_file(tmp_path / long["dir"] / "model.safetensors")
    for name, tensor in load_file(straight / "model.safetensors").items():
        assert torch.equal(tensor, continued[name]), name


def test_a_cosine_schedule_runs_every_trial_from_the_start(tiny_model_dir, tiny_evaluator_dir, tmp_path):
    spec = _spec(tmp_path, tiny_model_dir, tiny_evaluator_dir, {"ours": {"steps": [2, 4]}})
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)
    assert all("scores" in t and "continued_from" not in t for t in record["trials"])


def test_tuning_one_method_first_leaves_the_others_for_later(tiny_model_dir, tiny_evaluator_dir, tmp_path):
    spec = _spec(tmp_path, tiny_model_dir, tiny_evaluator_dir,
                 {"ours": {"alpha": [0.1, 1.0]}, "max-loss": {"alpha": [0.1, 1.0]}})
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path, methods=["ours"])
    assert {t["method"] for t in record["trials"]} == {"ours"} and set(record["chosen"]) == {"ours"}
    assert not Path(spec["write"]["max-loss"]).exists()
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path, methods=["max-loss"])
    assert set(record["chosen"]) == {"ours", "max-loss"} and len(record["trials"]) == 4
    with pytest.raises(UserError, match="known: ours, max-loss"):
        tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path, methods=["retrain"])


def test_scoring_on_test_checks_the_demo_targets_once(tiny_model_dir, tiny_evaluator_dir, tmp_path, monkeypatch):
    spec = _spec(tmp_path, tiny_model_dir, tiny_evaluator_dir, {"ours": {"alpha": [0.1, 1.0]}})
    tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)
    record = tune.score_test(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path, command="test")
    test = record["test"]["ours"]
    assert test["key"] == record["chosen"]["ours"]["key"]
    assert {"original", "unlearned"} <= set(test["metrics"]) and len(test["targets"]) >= 4
    assert "| ours |" in tune.markdown(record)
    monkeypatch.setattr(tune, "evaluate_model_dirs", lambda *a, **k: pytest.fail("scored on test twice"),
                        raising=False)
    tune.score_test(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path, command="test")
