"""bench/tune.py (run by benchmarks/tune.py): the same budget per method, choices by the declared rule,
validation images only.

Every trial is scored on the model's validation images (and the chosen one on its test images): the runs that check
how trials are run, continued, pruned and chosen tune few_held_out_model_dir (50 of each, not 500 and 1,000);
test_tuning_scores_only_validation_images tunes tiny_model_dir and checks which images its default split scores."""
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import i2i_unlearn.bench.tune as tune
from i2i_unlearn.bench.grid import (chains, choose_like_retrained, distance_to_retrained, planned_steps, rule_order,
                                   successive_halving)
from i2i_unlearn.bench.robust import COST_SHARE
from i2i_unlearn.config import DataConfig, UnlearnConfig, load_yaml
from i2i_unlearn.data import load_split
from i2i_unlearn.errors import UserError
from i2i_unlearn.methods import METHODS
from i2i_unlearn.models import MODELS



def _spec(tmp_path, model_dir, evaluator_dir, grid, methods=("ours",)):
    base = {"steps": 2, "batch_size": 8, "checkpoint_every": 2, "log_every": 1,
            "tasks": [{"name": "center-inpaint", "ratio": 0.5}], "optim": {"lr": 0.001, "warmup_steps": 0}}
    return {"model": str(model_dir), "evaluator": str(evaluator_dir), "base": base, "forget_classes": ["Cat"],
            "rule": {"retain_fid_max_x": 1.15, "retain_similarity_min_x": 0.97}, "grid": grid,
            "methods": list(methods), "write": {m: str(tmp_path / f"chosen-{m}.yaml") for m in methods}}


def _row_keys(images: torch.Tensor) -> set[bytes]:
    return {(row * 255).round().to(torch.uint8).numpy().tobytes() for row in images}


def test_tuning_scores_only_validation_images(tiny_model_dir, tiny_evaluator_dir, tmp_path, monkeypatch):
    import i2i_unlearn.evaluation.collect as collect
    seen = []
    real_generate = collect.generate_batch

    def spy(model, images, *args, **kwargs):
        seen.append(images.clone())
        return real_generate(model, images, *args, **kwargs)
    monkeypatch.setattr(collect, "generate_batch", spy)
    spec = _spec(tmp_path, tiny_model_dir, tiny_evaluator_dir, {"optim.lr": [1e-4, 1e-3]}, ("ours", "max-loss"))
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)

    split = load_split(DataConfig())
    scored = _row_keys(torch.cat(seen))
    assert scored and scored <= _row_keys(split.val.images)
    assert not scored & _row_keys(split.test.images)
    assert record["scored_split"] == "val" and record["split"]["val"]["count"] == 500
    # every trial recorded, 2 per method, with its knobs applied
    assert sorted((t["method"], json.dumps(t["overrides"])) for t in record["trials"]) == sorted([
        ("ours", '{"optim": {"lr": 0.0001}}'), ("ours", '{"optim": {"lr": 0.001}}'),
        ("max-loss", '{"optim": {"lr": 0.0001}}'), ("max-loss", '{"optim": {"lr": 0.001}}')])
    lrs = {t["config"]["optim"]["lr"] for t in record["trials"] if t["method"] == "max-loss"}
    assert lrs == {1e-4, 1e-3}
    # the rule reads the upper end of the retain FID ratio's interval, paired with the original over the same
    # resamples of the validation images (the original keeps its replicates for that)
    trial = max(record["trials"], key=lambda t: t["scores"]["retain"]["fid_ratio_hw"])
    assert len(record["original"]["scores"]["retain"]["fid_replicates"]) == tune.RESAMPLES
    assert trial["scores"]["retain"]["fid_hw"] > 0 and trial["scores"]["retain"]["fid_ratio_hw"] > 0
    assert trial["ratios"]["retain_fid_hi_x"] == pytest.approx(
        trial["ratios"]["retain_fid_x"] + trial["scores"]["retain"]["fid_ratio_hw"], abs=1e-4)
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
    # within the bound on the sample, but its interval reaches past it: not kept (the winner's curse)
    lucky = trial("lucky", 1.12, 0.99, 0.0, 300)
    lucky["ratios"]["retain_fid_hi_x"] = 1.3
    assert tune.choose([lucky, trials[1]], rule)[0]["key"] == "keeps"


def test_a_grid_per_method_is_refused(tmp_path):
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump({"methods": ["ours", "max-loss"], "write": {"ours": "a", "max-loss": "b"},
                                    "grid": {"ours": {"alpha": [0.1, 0.2]}, "max-loss": {"alpha": [0.1, 0.2]}}}))
    with pytest.raises(UserError, match="one grid for every method"):
        tune.load_tune_config(path)


def test_the_shipped_tuning_configs_give_every_method_and_family_the_same_grid():
    """The grids themselves and the steps they cost, not their trial counts: the forget weight from 0.01 to 0.5
    (at least 5 values), two lengths, and two learning rates (half and all of the family's base rate)."""
    root = Path(__file__).resolve().parents[2] / "benchmarks"
    specs = {path.name: tune.load_tune_config(path) for path in sorted(root.glob("tune-*.yaml"))}
    assert {"tune-mae.yaml", "tune-vqgan.yaml", "tune-diffusion.yaml"} <= set(specs)
    for name, spec in specs.items():
        grid = spec["grid"]
        assert min(grid["alpha"]) <= 0.01 and max(grid["alpha"]) >= 0.5 and len(grid["alpha"]) >= 5, name
        assert len(grid["steps"]) == 2 and len(grid["optim.lr"]) == 2, name
        base_lr = spec["base"]["optim"]["lr"]
        assert sorted(lr / base_lr for lr in grid["optim.lr"]) == pytest.approx([0.5, 1.0]), name
        assert {k: v for k, v in grid.items() if k != "optim.lr"} == \
            {k: v for k, v in specs["tune-mae.yaml"]["grid"].items() if k != "optim.lr"}, name
        assert tune.planned_steps(grid) == len(grid["alpha"]) * 2 * max(grid["steps"]), name
        assert spec.get("halving") == specs["tune-mae.yaml"].get("halving"), name   # the same pruning everywhere
        assert spec["like_retrained_max_step_share"] == COST_SHARE, name   # the audit's cost target
        # every method the family's model supports, none left out (ours-decoder needs a restoration, not noise)
        family = MODELS[json.loads((root.parent / spec["model"] / "config.json").read_text())["family"]]
        assert set(spec["methods"]) == {m for m, method in METHODS.items() if m != "retrain" and
                                        method.supports(family)}, name


def test_a_longer_trial_continues_the_shorter_one(few_held_out_model_dir, tiny_evaluator_dir, tmp_path):
    from safetensors.torch import load_file
    spec = _spec(tmp_path, few_held_out_model_dir, tiny_evaluator_dir, {"steps": [2, 4]})
    spec["base"]["optim"]["schedule"] = "constant"
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)
    short, long = sorted(record["trials"], key=lambda t: t["config"]["steps"])
    assert long["continued_from"] == short["key"]
    # continuing from step 2 ends exactly where an uninterrupted 4-step run ends
    straight = tmp_path / "straight"
    tune.unlearn(few_held_out_model_dir, tune.trial_config(spec["base"], "ours", {"steps": 4}, ["Cat"]), straight)
    continued = load_file(tmp_path / long["dir"] / "model.safetensors")
    for name, tensor in load_file(straight / "model.safetensors").items():
        assert torch.equal(tensor, continued[name]), name


def test_a_trial_killed_after_its_own_checkpoint_goes_on_from_it(few_held_out_model_dir, tiny_evaluator_dir,
                                                                 tmp_path, monkeypatch):
    """A continued trial killed midway resumes from its own latest checkpoint, not from its shorter trial's."""
    spec = _spec(tmp_path, few_held_out_model_dir, tiny_evaluator_dir, {"steps": [2, 4]})
    spec["base"]["optim"]["schedule"] = "constant"
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)
    long = max(record["trials"], key=lambda t: t["config"]["steps"])
    folder = tmp_path / long["dir"]
    assert sorted(p.name for p in (folder / "checkpoints").iterdir())[-1] == "step-0000004"
    record["trials"] = [t for t in record["trials"] if t["key"] != long["key"]]   # killed before it was scored
    (tmp_path / "tune.json").write_text(json.dumps(record))
    (folder / "model.safetensors").unlink()
    (folder / "kill-marker").write_text("")   # survives a resume; a restart from the shorter trial removes it
    calls = []
    real_unlearn = tune.unlearn
    monkeypatch.setattr(tune, "unlearn", lambda *a, **k: calls.append(k) or real_unlearn(*a, **k))
    again = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)
    assert [c.get("resume") for c in calls] == [True]
    assert (folder / "kill-marker").is_file() and (folder / "model.safetensors").is_file()
    resumed = next(t for t in again["trials"] if t["key"] == long["key"])
    assert resumed["continued_from"] != long["key"]
    # its time is the whole run's, each part once: the shorter trial's two steps (in the checkpoint it went on from),
    # its own two before the kill (in its own last checkpoint), and the resumed invocation
    def checkpoint_time(trial_dir, step):
        return json.loads((trial_dir / "checkpoints" / f"step-{step:07d}" / "state.json").read_text())["wall_time_s"]
    short = next(t for t in again["trials"] if t["key"] == resumed["continued_from"])
    before_kill = checkpoint_time(folder, 4)
    assert before_kill > checkpoint_time(tmp_path / short["dir"], 2) > 0
    run = json.loads((folder / "run.json").read_text())
    assert run["wall_time_total_s"] == pytest.approx(before_kill + run["wall_time_s"], abs=2e-3)
    assert resumed["unlearning_wall_time_s"] == round(run["wall_time_total_s"], 3)
    assert resumed[tune.WALL_TIME_SOURCE] == "run.json"

    def rerun_with(edit) -> dict:   # the record edited, then tuned again: nothing is unlearned, the trial returned
        record = json.loads((tmp_path / "tune.json").read_text())
        trial = next(t for t in record["trials"] if t["key"] == long["key"])
        edit(trial)
        (tmp_path / "tune.json").write_text(json.dumps(record))
        calls.clear()
        after = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)
        assert calls == []
        return next(t for t in after["trials"] if t["key"] == long["key"])

    def from_before(trial):   # as recorded before the time was read from run.json
        trial.pop(tune.WALL_TIME_SOURCE, None)
        trial["unlearning_wall_time_s"] = -1.0
    # a record from before reads the whole time from run.json, once
    assert rerun_with(from_before)["unlearning_wall_time_s"] == round(run["wall_time_total_s"], 3)
    # ... but not from a folder holding another model than the scored one
    assert rerun_with(lambda t: from_before(t) or t.update(unlearned_weights_sha256="0" * 64))[
        "unlearning_wall_time_s"] == -1.0
    # ... nor from a folder made again since (its run.json times the remake, not the scored run)
    shutil.rmtree(folder)
    record = json.loads((tmp_path / "tune.json").read_text())
    trials = {t["key"]: t for t in record["trials"]}
    scored = resumed["unlearned_weights_sha256"]
    trials[long["key"]].update(unlearning_wall_time_s=-2.0, unlearned_weights_sha256=scored)
    tune.trial_model_dir(trials[long["key"]], record, trials, tmp_path)
    (tmp_path / "tune.json").write_text(json.dumps(record))
    assert json.loads((folder / "config.json").read_text())["weights_sha256"] == scored   # the same model again
    assert rerun_with(lambda t: None)["unlearning_wall_time_s"] == -2.0


def test_a_cosine_schedule_runs_every_trial_from_the_start(few_held_out_model_dir, tiny_evaluator_dir, tmp_path):
    spec = _spec(tmp_path, few_held_out_model_dir, tiny_evaluator_dir, {"steps": [2, 4]})
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)
    assert all("scores" in t and "continued_from" not in t for t in record["trials"])


def test_tuning_one_method_first_leaves_the_others_for_later(few_held_out_model_dir, tiny_evaluator_dir, tmp_path):
    spec = _spec(tmp_path, few_held_out_model_dir, tiny_evaluator_dir, {"alpha": [0.1, 1.0]}, ("ours", "max-loss"))
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path, methods=["ours"])
    assert {t["method"] for t in record["trials"]} == {"ours"} and set(record["chosen"]) == {"ours"}
    assert not Path(spec["write"]["max-loss"]).exists()
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path, methods=["max-loss"])
    assert set(record["chosen"]) == {"ours", "max-loss"} and len(record["trials"]) == 4
    with pytest.raises(UserError, match="known: ours, max-loss"):
        tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path, methods=["retrain"])


def test_scoring_on_test_checks_the_demo_targets_once(few_held_out_model_dir, tiny_evaluator_dir, tmp_path,
                                                      monkeypatch):
    spec = _spec(tmp_path, few_held_out_model_dir, tiny_evaluator_dir, {"alpha": [0.1, 1.0]})
    tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)
    record = tune.score_test(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path, command="test")
    test = record["test"]["ours"]
    assert test["key"] == record["chosen"]["ours"]["key"]
    assert {"original", "unlearned"} <= set(test["metrics"]) and len(test["targets"]) >= 4
    assert "| ours |" in tune.markdown(record)
    monkeypatch.setattr(tune, "evaluate_model_dirs", lambda *a, **k: pytest.fail("scored on test twice"),
                        raising=False)
    tune.score_test(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path, command="test")


def test_successive_halving_continues_the_best_chains_by_the_rule():
    """5 chains, 3 lengths, keep 1/2: 5 run the shortest, the best 3 by the rule the middle one, the best 2 of those
    the longest; the rest is pruned where it stopped, and the budget counts exactly the steps run."""
    rule = {"retain_fid_max_x": 1.15, "retain_similarity_min_x": 0.97}
    grid = {"alpha": [0.1, 0.2, 0.3, 0.4, 0.5], "steps": [10, 20, 40]}
    # recognition by (alpha, steps): lower is better; alpha 0.5 breaks the retain set (ranked last)
    recognition = {0.1: 0.5, 0.2: 0.1, 0.3: 0.3, 0.4: 0.2, 0.5: 0.0}
    runs, pruned = [], []

    def run(point):
        runs.append((point["alpha"], point["steps"]))
        late = 0.05 if point["alpha"] == 0.3 and point["steps"] == 20 else 0.0   # 0.3 overtakes 0.4 at 20 steps
        return {"key": str(point), "overrides": point, "ratios": {
                    "retain_fid_x": 2.0 if point["alpha"] == 0.5 else 1.0, "retain_similarity_x": 1.0},
                "scores": {"forget": {"recognition": recognition[point["alpha"]] - late * 3, "fid": 1.0}}}

    def prune(point, after_steps, rank, of):
        pruned.append((point["alpha"], point["steps"], after_steps, rank, of))
        return {"key": str(point), "pruned": True}
    settled = successive_halving(chains(grid), 0.5, rule, run, prune)
    assert [r for r in runs if r[1] == 10] == [(a, 10) for a in grid["alpha"]]
    assert sorted(a for a, s in runs if s == 20) == [0.2, 0.3, 0.4]          # 0.1 forgets least, 0.5 breaks retain
    assert sorted(a for a, s in runs if s == 40) == [0.2, 0.3]              # 0.3 overtook 0.4 at 20 steps
    assert sorted(pruned) == sorted([(0.1, 20, 10, 4, 5), (0.1, 40, 10, 4, 5), (0.5, 20, 10, 5, 5),
                                     (0.5, 40, 10, 5, 5), (0.4, 40, 20, 3, 3)])
    assert len(settled) == 15
    # the budget: every chain to 10 steps, 3 to 20, 2 to 40 (a longer trial continues its shorter one)
    assert planned_steps(grid, 0.5) == 5 * 10 + 3 * 10 + 2 * 20
    assert planned_steps(grid) == 5 * 40


def test_halving_in_a_tuning_run_prunes_and_chooses_among_the_trials_run(few_held_out_model_dir, tiny_evaluator_dir,
                                                                         tmp_path, monkeypatch):
    spec = _spec(tmp_path, few_held_out_model_dir, tiny_evaluator_dir, {"alpha": [0.05, 0.5, 5.0], "steps": [2, 4]})
    spec["base"]["optim"]["schedule"] = "constant"
    spec["halving"] = {"keep": 0.5}
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)
    scored = [t for t in record["trials"] if "scores" in t]
    pruned = [t for t in record["trials"] if "pruned" in t]
    assert [t["config"]["steps"] for t in scored].count(2) == 3 and [t["config"]["steps"] for t in scored].count(4) == 2
    assert len(pruned) == 1 and pruned[0]["pruned"]["after_steps"] == 2 and pruned[0]["config"]["steps"] == 4
    # the pruned chain is the one the rule ranks last at 2 steps (a tie keeps the grid's earlier chain)
    short = [t for t in scored if t["config"]["steps"] == 2]
    worst = sorted(short, key=lambda t: rule_order(t, spec["rule"]))[-1]
    assert pruned[0]["overrides"]["alpha"] == worst["overrides"]["alpha"]
    assert record["chosen"]["ours"]["key"] in {t["key"] for t in scored}
    assert record["budget"]["steps_per_method"] == 3 * 2 + 2 * 2 and record["budget"]["halving"]["keep"] == 0.5
    assert "pruned after 2 steps (rank 3 of 3)" in tune.markdown(record)
    # a second run re-runs nothing
    monkeypatch.setattr(tune, "unlearn", lambda *a, **k: pytest.fail("a finished trial was re-run"))
    assert tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)["chosen"] == record["chosen"]


def test_a_halving_share_outside_0_1_is_refused(tmp_path):
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump({"methods": ["ours"], "write": {"ours": "a"}, "grid": {"alpha": [0.1]},
                                    "halving": {"keep": 0}}))
    with pytest.raises(UserError, match="halving"):
        tune.load_tune_config(path)


def test_the_like_retrained_choice_keeps_within_its_cost_bound_counting_the_start():
    """like_retrained_max_step_share: a trial's steps with its start's, against the retrained models' steps."""
    trials = {"s": {"key": "s", "config": {"steps": 500}},
              "u": {"key": "u", "config": {"steps": 500}, "starts_from": {"method": "ours-substitute", "key": "s"}},
              "l": {"key": "l", "config": {"steps": 1500}}}
    record = {"retrained": {"steps": 4000}}

    def allowed(share):
        spec = {} if share is None else {"like_retrained_max_step_share": share}
        return [t["key"] for t in tune.within_cost(list(trials.values()), spec, record, trials)]
    assert tune.steps_from_the_original(trials["u"], trials) == 1000
    assert allowed(None) == ["s", "u", "l"] and allowed(0.25) == ["s", "u"] and allowed(0.2) == ["s"]
    for share in (0, 1.5, "a quarter", True):
        with pytest.raises(UserError, match="like_retrained_max_step_share"):
            tune.check_spec({"methods": ["ours"], "write": {"ours": "a"}, "grid": {"alpha": [0.1]},
                             "like_retrained_max_step_share": share})


def test_a_method_that_starts_from_another_is_tuned_from_its_chosen_model(few_held_out_model_dir,
                                                                         tiny_evaluator_dir, tmp_path):
    """undo distills an unlearned model: its trials start from the chosen trial of the method it names, over the
    same grid, and a changed start choice makes new trials (the key names the start)."""
    spec = _spec(tmp_path, few_held_out_model_dir, tiny_evaluator_dir, {"alpha": [0.1, 1.0]}, ("ours", "undo"))
    spec["starts_from"] = {"undo": "ours"}
    with pytest.raises(UserError, match="tune ours first"):
        tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path, methods=["undo"])
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)
    start = {"method": "ours", "key": record["chosen"]["ours"]["key"]}
    undo = [t for t in record["trials"] if t["method"] == "undo"]
    assert len(undo) == 2 and all(t["starts_from"] == start for t in undo)
    source = tmp_path / next(t["dir"] for t in record["trials"] if t["key"] == start["key"])
    for trial in undo:
        inputs = json.loads((tmp_path / trial["dir"] / "run.json").read_text())["inputs"]
        # made from the root: the start named relative to it (a robustness audit may keep this model as its own)
        assert not Path(inputs["model_dir"]).is_absolute() and tmp_path / inputs["model_dir"] == source
    assert record["chosen"]["undo"]["starts_from"] == start
    assert "chosen-ours.yaml unlearns" in Path(spec["write"]["undo"]).read_text()
    # every undo trial scored: a second run does not make ours's chosen model again, even when its folder is gone
    shutil.rmtree(source)
    tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)
    assert not source.exists()
    # the same knobs from another start are other trials
    config = tune.trial_config(spec["base"], "undo", {"alpha": 0.1}, ["Cat"])
    assert tune._key("undo", config, start) != tune._key("undo", config, {**start, "key": "another"})


@pytest.mark.parametrize("starts_from", [{"undo": "retrain"}, {"ours": "undo"}])
def test_a_start_that_is_not_tuned_first_is_refused(tmp_path, starts_from):
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump({"methods": ["ours", "undo"], "write": {"ours": "a", "undo": "b"},
                                    "grid": {"alpha": [0.1]}, "starts_from": starts_from}))
    with pytest.raises(UserError, match="starts_from"):
        tune.load_tune_config(path)


def test_the_like_retrained_choice_is_the_kept_trial_closest_to_the_retrained_model():
    rule = {"retain_fid_max_x": 1.15, "retain_similarity_min_x": 0.97}
    retrained = {"forget": {"recognition": 0.7, "fid": 40.0}}

    def trial(key, fid_x, recognition, forget_fid):
        return {"key": key, "ratios": {"retain_fid_x": fid_x, "retain_similarity_x": 0.99},
                "scores": {"forget": {"recognition": recognition, "fid": forget_fid}}}
    trials = [trial("forgets-most", 1.1, 0.1, 120.0), trial("like-retrained", 1.1, 0.65, 44.0),
              trial("barely-forgets", 1.0, 0.9, 20.0), trial("closest-but-damages", 1.3, 0.7, 40.0)]
    assert tune.choose(trials, rule)[0]["key"] == "forgets-most"   # the rule: the most forgetting
    assert choose_like_retrained(trials, rule, retrained)["key"] == "like-retrained"
    # 0.05 / 0.7 + 4 / 40, against 0.2 / 0.7 + 20 / 40
    assert distance_to_retrained(trials[1], retrained) == pytest.approx(0.05 / 0.7 + 0.1)
    assert choose_like_retrained([trials[3]], rule, retrained) is None


def test_the_like_retrained_reference_is_the_mean_of_its_seeds():
    assert tune.like_retrained_reference({"retrained": "a"}) == ["a"]
    assert tune.like_retrained_reference({"retrained": "a", "like_retrained_reference": ["b", "c"]}) == ["b", "c"]
    one = {"forget": {"fid": 10.0, "recognition": 0.6, "fid_replicates": [1.0]}, "retain": {"fid": 2.0}}
    two = {"forget": {"fid": 20.0, "recognition": 0.8, "fid_replicates": [2.0]}, "retain": {"fid": 4.0}}
    assert tune.mean_scores([one]) == one
    assert tune.mean_scores([one, two]) == {"forget": {"fid": 15.0, "recognition": pytest.approx(0.7)},
                                            "retain": {"fid": 3.0}}


def test_a_tuning_run_records_the_like_retrained_choice_and_remakes_a_lost_trial_model(
        few_held_out_model_dir, tiny_evaluator_dir, tmp_path):
    """Given `retrained:`, the retrained model is scored on the same validation images and the kept trial closest to
    it is recorded and written; a trial model that is gone (a fresh machine has no runs/) is made again from its
    recorded config, bit-identical (a continued trial made from the start, too)."""
    from i2i_unlearn.models import load_model
    spec = _spec(tmp_path, few_held_out_model_dir, tiny_evaluator_dir, {"alpha": [0.1, 1.0], "steps": [2, 4]})
    spec.update(retrained=str(few_held_out_model_dir), like_retrained_dir=str(tmp_path / "like"))
    spec["base"]["optim"]["schedule"] = "constant"   # a 4-step trial continues its 2-step one
    spec["rule"] = {"retain_fid_max_x": 100.0, "retain_similarity_min_x": 0.0}   # every trial keeps the retain set
    record = tune.tune(spec, tmp_path / "tune.json", tmp_path / "work", root=tmp_path)
    # the "retrained" model here is the original itself: the same scores on the same images, and its FID ratio to
    # the original is 1 on every resample: a paired half-width of 0, where the unpaired one is the FID's own
    for set_name in ("forget", "retain"):
        retrained, original = record["retrained"]["scores"][set_name], record["original"]["scores"][set_name]
        assert retrained.pop("fid_ratio_hw") == 0 and original.pop("fid_replicates") and retrained == original
        assert original["fid_hw"] > 0
    done = [t for t in record["trials"] if "scores" in t and "pruned" not in t]
    closest = min(done, key=lambda t: distance_to_retrained(t, record["retrained"]["scores"]))
    record = json.loads((tmp_path / "tune.json").read_text())
    like = record["like_retrained"]["ours"]
    assert like["key"] == closest["key"] and like["config_file"] == str(tmp_path / "like" / "chosen-ours.yaml")
    written = (tmp_path / "like" / "chosen-ours.yaml").read_text()
    assert "forgets most like the retrained model" in written
    assert load_yaml(UnlearnConfig, tmp_path / "like" / "chosen-ours.yaml").alpha == closest["config"]["alpha"]
    assert "like retrained" in tune.markdown(record)
    assert all(t["scoring_wall_time_s"] > 0 for t in done)   # each trial's scoring time, beside its unlearning's
    continued = next(t for t in done if "continued_from" in t)
    trials = {t["key"]: t for t in record["trials"]}
    for trial in (trials[continued["continued_from"]], continued):
        folder = tmp_path / trial["dir"]
        shutil.rmtree(folder)
        assert tune.trial_model_dir(trial, record, trials, tmp_path) == folder
        assert load_model(folder).pretrained_info["weights_sha256"] == trial["unlearned_weights_sha256"]
    # within the cost bound (like_retrained_max_step_share 0.5 of retraining's 4 steps): only the 2-step trials
    shutil.copy(tmp_path / "tune.json", tmp_path / "tune-bounded.json")
    bounded = tune.tune({**spec, "like_retrained_max_step_share": 0.5}, tmp_path / "tune-bounded.json",
                        tmp_path / "work", root=tmp_path)
    short = [t for t in done if t["config"]["steps"] == 2]
    assert bounded["retrained"]["steps"] == 4 and len(short) == 2
    assert bounded["like_retrained"]["ours"]["key"] == \
        min(short, key=lambda t: distance_to_retrained(t, record["retrained"]["scores"]))["key"]
    assert "stands out. Here like_retrained_max_step_share is 0.5: at most 0.5 x 4 = 2 steps." in tune.markdown(bounded)
    # no trial keeps the retain set by a stricter rule: no like-retrained knobs, and none left from before
    shutil.copy(tmp_path / "tune.json", tmp_path / "tune-strict.json")
    strict = {**spec, "rule": {"retain_fid_max_x": 0.5, "retain_similarity_min_x": 0.97}}
    again = tune.tune(strict, tmp_path / "tune-strict.json", tmp_path / "work", root=tmp_path)
    assert again["like_retrained"]["ours"] is None and not (tmp_path / "like" / "chosen-ours.yaml").exists()
