"""Budgeted unlearning (budget.py, docs/budget.md): the controller keeps a retain budget on validation images,
rolls back to the best checkpoint, says so when it cannot, resumes exactly, and leaves fixed-alpha runs alone.

The known trade-off: a tiny MAE trained 100 steps (its outputs depend on its encoder; the shared conftest model,
trained 4 steps, barely does), unlearned with `ours` at alpha 50 and lr 1e-3. Left fixed, that alpha spends about 10 % of the retain hole error on
validation images, over a budget of 6 %; the controller must turn it down.
"""
import copy
import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

import i2i_unlearn.controllers.budget as budget_module
import i2i_unlearn.controllers.validation as validation_module
import i2i_unlearn.loop as loop
import i2i_unlearn.unlearn as unlearn_module
from i2i_unlearn import load_model
from i2i_unlearn.controllers.budget import DEFAULT_RETAIN_BUDGET, apply_default_budget
from i2i_unlearn.controllers.validation import ValidationProbe
from i2i_unlearn.cli import app, main
from i2i_unlearn.config import DataConfig, OptimConfig, TokenizerTrainConfig, UnlearnConfig, to_dict
from i2i_unlearn.data import load_split, make_unlearn_split
from i2i_unlearn.methods import METHODS, UnlearnObjective, get_method
from i2i_unlearn.methods.base import set_trainable
from i2i_unlearn.model_card import MODEL_CARD
from i2i_unlearn.train import train
from i2i_unlearn.train_tokenizer import train_tokenizer
from i2i_unlearn.lineage import training_data_config
from i2i_unlearn.unlearn import unlearn, unlearning_batches
from conftest import TINY_DIFFUSION, TINY_TOKENIZER, TINY_VQGAN, tiny_train_config, tiny_unlearn_config

runner = CliRunner()
BUDGET = 1.06
# the keys every UnlearnConfig recorded before budgets existed: a fixed-alpha run records exactly these, so
# bench/tune.py's trial keys, bench's cache keys and resume checks of older runs stay valid
KEYS_BEFORE_BUDGETS = ["alpha", "batch_size", "checkpoint_every", "feature_norm", "forget_classes", "forget_files",
                       "log_every", "method", "noise", "optim", "proxy", "proxy_classes", "retain_batch_size",
                       "retain_classes", "retain_ratio", "retain_size", "seed", "steps", "tasks"]


@pytest.fixture(scope="module")
def trained_mae(tmp_path_factory) -> Path:
    config = tiny_train_config(steps=100)
    config.checkpoint_every = config.log_every = 100
    out = tmp_path_factory.mktemp("budget") / "mae-100-steps"
    train(config, out)
    return out


def too_strong(**overrides) -> UnlearnConfig:
    """`ours` with a forget weight far too large for this model, budgeted on the hole error (no evaluator)."""
    values = dict(steps=30, checkpoint_every=2, log_every=2, alpha=50.0, retain_budget=BUDGET, budget_metric="hole-mse",
                  optim=OptimConfig(lr=1e-3, warmup_steps=0, schedule="constant"))
    return tiny_unlearn_config(**{**values, **overrides})


def budget_record(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())["budget"]


def retain_ratio_of(model_dir: Path, original_dir: Path, config: UnlearnConfig) -> float:
    """The retain score of a saved model on the run's validation sample, as a multiple of the original's."""
    original = load_model(original_dir)
    data = training_data_config(original)
    probe = ValidationProbe(config, make_unlearn_split(data, config, "val"), data)
    return probe.measure(load_model(model_dir))["retain"] / probe.measure(original)["retain"]


def test_a_forget_weight_too_large_is_turned_down_and_the_budget_kept(trained_mae, tmp_path):
    fixed = tmp_path / "fixed"
    unlearn(trained_mae, too_strong(retain_budget=None, budget_metric="fid"), fixed)
    assert retain_ratio_of(fixed, trained_mae, too_strong()) > BUDGET   # the trade-off: this alpha breaks the budget

    unlearn(trained_mae, too_strong(), tmp_path / "budgeted")
    record = budget_record(tmp_path / "budgeted")
    assert record["final_alpha"] < 50.0 / 2
    for entry in record["path"][1:]:   # the dual step: down when over the budget, up with slack (no goal set)
        assert (entry["next_alpha"] < entry["alpha"]) == (entry["retain_ratio"] > BUDGET), entry
    chosen = record["chosen"]
    assert record["in_budget"] and chosen["in_budget"] and chosen["retain_ratio"] <= BUDGET
    within = [e for e in record["path"] if e["candidate"] and e["in_budget"]]
    assert chosen["forget_ratio"] == min(e["forget_ratio"] for e in within)   # the most forgetting within it
    assert retain_ratio_of(tmp_path / "budgeted", trained_mae, too_strong()) == pytest.approx(chosen["retain_ratio"])
    config = json.loads((tmp_path / "budgeted" / "config.json").read_text())
    assert config["unlearning"]["budget"]["chosen_step"] == chosen["step"]
    assert config["unlearning"]["config"]["alpha"] == 50.0   # the config records the alpha it was given
    card = (tmp_path / "budgeted" / MODEL_CARD).read_text()
    assert "## Retain budget" in card and f"| {chosen['step']} (kept) |" in card
    # a kept checkpoint that forgot nothing measurable is said loudly in the card, and only then
    from i2i_unlearn.model_card import _budget
    assert record["forgot_measurably"] is (chosen["forget_ratio_hi"] < 1.0)
    assert ("FORGOT NOTHING MEASURABLE" in card) is (not record["forgot_measurably"])
    loud = "\n".join(_budget({**record, "forgot_measurably": False}))
    assert f"**FORGOT NOTHING MEASURABLE**: the forget score's 95 % interval reaches the original's " \
        f"({chosen['forget_ratio_hi']:.4f}x)" in loud
    assert "FORGOT NOTHING" not in "\n".join(_budget({**record, "forgot_measurably": True}))
    assert record["control"]["measurements"] == len(record["path"]) and record["control"]["share_of_wall_time"] > 0


def test_roll_back_restores_the_kept_checkpoint_bit_for_bit(trained_mae, tmp_path, monkeypatch):
    at_checkpoint = {}
    real_save = loop._save_checkpoint

    def save_and_copy(run_dir, step, module, *args, **kwargs):
        at_checkpoint[step] = {name: value.clone() for name, value in module.state_dict().items()}
        return real_save(run_dir, step, module, *args, **kwargs)
    monkeypatch.setattr(loop, "_save_checkpoint", save_and_copy)
    # max-loss keeps damaging the retain set after alpha falls (Adam's momentum): the last step is not the best
    out = tmp_path / "out"
    unlearn(trained_mae, too_strong(method="max-loss", alpha=2.0, retain_budget=1.2), out)
    kept = budget_record(out)["chosen"]["step"]
    assert kept != 30, "the run kept its last step: no roll-back was exercised"
    saved = load_file(out / "model.safetensors")
    assert saved.keys() == at_checkpoint[kept].keys()
    assert all(torch.equal(saved[name], value) for name, value in at_checkpoint[kept].items())
    assert not all(torch.equal(saved[name], value) for name, value in at_checkpoint[30].items())


def test_an_unmeetable_budget_ends_over_budget_with_the_closest_model(trained_mae, tmp_path, capfd):
    out = tmp_path / "out"
    unlearn(trained_mae, too_strong(retain_budget=1.001), out)
    record = budget_record(out)
    candidates = [e for e in record["path"] if e["candidate"]]
    assert not any(e["in_budget"] for e in candidates) and not record["in_budget"]
    assert record["chosen"]["retain_ratio"] == min(e["retain_ratio"] for e in candidates)   # the closest
    assert record["message"].startswith("over budget: no checkpoint kept the retain budget 1.001x")
    assert f"budget: {record['message']}" in capfd.readouterr().err
    card = (out / MODEL_CARD).read_text()
    front_matter = yaml.safe_load(card.split("---")[1])
    assert front_matter["i2i_unlearn"]["retain_budget"]["within_budget"] is False
    assert "**OVER BUDGET**" in card
    assert json.loads((out / "config.json").read_text())["unlearning"]["budget"]["in_budget"] is False


def test_the_run_stops_once_the_goal_is_met_within_the_budget(trained_mae, tmp_path):
    out = tmp_path / "out"
    unlearn(trained_mae, too_strong(retain_budget=1.5, forget_goal=0.98, forget_metric="hole-mse"), out)
    record = budget_record(out)
    last = record["path"][-1]
    assert record["stopped_early_at"] == last["step"] < 30 and last["in_budget"] and last["forget_ratio"] <= 0.98
    assert all(e["forget_ratio"] > 0.98 or not e["in_budget"] for e in record["path"][:-1])   # not earlier
    assert record["chosen"]["step"] == last["step"] and last["next_alpha"] == last["alpha"]
    log = [json.loads(line) for line in (out / "unlearn_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == last["step"]
    assert "stopped early at step" in (out / MODEL_CARD).read_text()


def _rows(images: torch.Tensor) -> set[bytes]:
    return {(row * 255).round().to(torch.uint8).numpy().tobytes() for row in images}


@pytest.mark.parametrize("proxy", [False, True], ids=["retain-set", "proxy"])
def test_validation_images_never_enter_training(trained_mae, tmp_path, monkeypatch, proxy, fashion_mnist_root):
    drawn, measured = [], []
    real_batches, real_generate = unlearn_module.unlearning_batches, validation_module.generate_outputs

    def spy_batches(split, config, model):
        make_batch = real_batches(split, config, model)

        def spied(step, generator):
            batch = make_batch(step, generator)
            drawn.extend([batch["forget_images"], batch["retain_images"]])
            return batch
        return spied

    def spy_generate(model, images, *args, **kwargs):
        measured.append(images)
        return real_generate(model, images, *args, **kwargs)
    monkeypatch.setattr(unlearn_module, "unlearning_batches", spy_batches)
    monkeypatch.setattr(validation_module, "generate_outputs", spy_generate)
    overrides = dict(steps=4, budget_images=32)
    if proxy:
        overrides.update(proxy=DataConfig(dataset="fashion-mnist", root=str(fashion_mnist_root)),
                         proxy_classes=["Sandal"])
    unlearn(trained_mae, too_strong(**overrides), tmp_path / "out")

    own = load_split(DataConfig())
    held_out = _rows(own.val.images) | _rows(own.test.images)
    trained_on = _rows(torch.cat(drawn))
    measured_rows = _rows(torch.cat(measured))
    assert trained_on and not trained_on & held_out
    assert measured_rows and not measured_rows & trained_on and not measured_rows & _rows(own.test.images)
    validation = _rows(own.val.images)
    if proxy:   # the retain side is measured on the proxy's own validation images (Sandal)
        fashion = load_split(DataConfig(dataset="fashion-mnist", root=str(fashion_mnist_root)))
        sandals = fashion.val.images[fashion.val.labels == fashion.val.class_names.index("Sandal")]
        assert not trained_on & _rows(fashion.val.images)
        validation |= _rows(sandals)
        assert _rows(sandals) & measured_rows
    assert measured_rows <= validation
    sample = budget_record(tmp_path / "out")["sample"]
    assert sample["retain"]["source"] == ("val of the proxy fashion-mnist" if proxy else "val")


def test_no_budget_leaves_runs_as_they_were(trained_mae, tmp_path, monkeypatch):
    config = too_strong(retain_budget=None, budget_metric="fid", steps=6)
    assert sorted(to_dict(config)) == KEYS_BEFORE_BUDGETS
    monkeypatch.setattr(validation_module.ValidationProbe, "measure", lambda *a: pytest.fail("a fixed-alpha run measured"))
    out = tmp_path / "out"
    unlearn(trained_mae, config, out, keep_checkpoint=True)
    record = json.loads((out / "run.json").read_text())
    assert "budget" not in record and sorted(record["config"]) == KEYS_BEFORE_BUDGETS
    assert "budget" not in json.loads((out / "config.json").read_text())["unlearning"]
    state = json.loads(next((out / "checkpoints").glob("step-*/state.json")).read_text())
    assert "monitor" not in state
    assert "## Retain budget" not in (out / MODEL_CARD).read_text()

    # the same run composed of the loop's parts as unlearn() called them before budgets existed
    teacher = load_model(trained_mae)
    student = copy.deepcopy(teacher)
    teacher.eval().requires_grad_(False)
    method = get_method(config.method, config)
    set_trainable(student, method.trains)
    split = make_unlearn_split(training_data_config(teacher), config, "val")
    loop.run_loop(objective=UnlearnObjective(method, student, teacher), module=student, optim=config.optim,
                  steps=config.steps, seed=config.seed, make_batch=unlearning_batches(split, config, student),
                  run_dir=tmp_path / "parts", checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                  resume=False, description="parts")
    saved = load_model(out).state_dict()
    assert all(torch.equal(saved[name], value) for name, value in student.state_dict().items())


class Killed(Exception):
    pass


def test_a_resumed_budgeted_run_ends_where_an_uninterrupted_one_ends(trained_mae, tiny_evaluator_dir, tmp_path,
                                                                     monkeypatch):
    # the default metrics (retain FID, forget recognition) through the tiny evaluator
    config = too_strong(steps=12, budget_metric="fid", budget_evaluator=str(tiny_evaluator_dir))
    unlearn(trained_mae, config, tmp_path / "straight")

    real_save = loop._save_checkpoint

    def save_then_die(run_dir, step, *args, **kwargs):
        folder = real_save(run_dir, step, *args, **kwargs)
        if step == 6:
            raise Killed
        return folder
    monkeypatch.setattr(loop, "_save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        unlearn(trained_mae, config, tmp_path / "resumed")
    monkeypatch.setattr(loop, "_save_checkpoint", real_save)
    assert json.loads((tmp_path / "resumed" / "checkpoints" / "step-0000006" / "state.json").read_text())["monitor"]
    unlearn(trained_mae, config, tmp_path / "resumed", resume=True)

    straight, resumed = load_file(tmp_path / "straight" / "model.safetensors"), \
        load_file(tmp_path / "resumed" / "model.safetensors")
    assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)
    for name in ("unlearn_log.jsonl",):
        assert (tmp_path / "straight" / name).read_text() == (tmp_path / "resumed" / name).read_text()
    a, b = budget_record(tmp_path / "straight"), budget_record(tmp_path / "resumed")
    assert a["path"] == b["path"] and a["chosen"] == b["chosen"] and a["final_alpha"] == b["final_alpha"]
    assert len({e["alpha"] for e in a["path"]}) > 1, "alpha never moved: the resume did not restore a changed alpha"


@pytest.fixture(scope="module")
def other_families(tmp_path_factory) -> dict[str, Path]:
    """The conftest's tiny diffusion and VQ-GAN models, on a split with 5 validation images per class: their
    training check and the budget's measurements generate a few images only (the MAE is every other test's)."""
    root = tmp_path_factory.mktemp("families")
    data = DataConfig(test_per_class=5, val_per_class=5)
    train(dataclasses.replace(tiny_train_config(model=TINY_DIFFUSION), data=data), root / "diffusion")
    train_tokenizer(TokenizerTrainConfig(data=data, tokenizer=TINY_TOKENIZER, steps=2, batch_size=8,
                                         adversarial_start=1, checkpoint_every=2, log_every=2), root / "tokenizer")
    vqgan = {**{k: v for k, v in TINY_VQGAN.items() if k != "tokenizer"}, "tokenizer_path": str(root / "tokenizer")}
    train(dataclasses.replace(tiny_train_config(model=vqgan), data=data), root / "vqgan")
    return {"diffusion": root / "diffusion", "vqgan": root / "vqgan"}


@pytest.mark.parametrize("family", ["diffusion", "vqgan"])
def test_every_family_can_be_budgeted(other_families, tmp_path, family):
    out = tmp_path / family
    unlearn(other_families[family], too_strong(steps=4, budget_images=8, alpha=1.0), out)
    record = budget_record(out)
    assert [e["step"] for e in record["path"]] == [0, 2, 4] and (out / "model.safetensors").is_file()


@pytest.mark.parametrize("method", [m for m in METHODS if m not in ("retrain", "ours")])
def test_every_method_with_a_forget_weight_can_be_budgeted(trained_mae, tmp_path, method):
    out = tmp_path / method
    unlearn(trained_mae, too_strong(method=method, steps=4, budget_images=8, alpha=1.0), out)
    record = budget_record(out)
    assert [e["step"] for e in record["path"]] == [0, 2, 4] and record["path"][1]["next_alpha"] != 1.0


def test_front_writes_one_model_per_budget_and_the_plot(trained_mae, tmp_path):
    from builders import make_results, write_results
    from i2i_unlearn.evaluation.report import write_report
    config = tmp_path / "knobs.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in to_dict(too_strong(steps=12, forget_classes=["Cat"])).items()
                                      if k != "retain_budget"}))
    out = tmp_path / "front"
    result = runner.invoke(app, ["unlearn", "--model", str(trained_mae), "--config", str(config), "--out", str(out),
                                 "--front", "1.3,1.05"])
    assert result.exit_code == 0, result.output
    front = json.loads((out / "front.json").read_text())
    assert [m["retain_budget"] for m in front["members"]] == [1.05, 1.3]   # tightest first
    for member in front["members"]:
        folder = out / member["dir"]
        assert folder.name == f"budget-{member['retain_budget']:g}" and (folder / "model.safetensors").is_file()
        assert budget_record(folder)["retain_budget"] == member["retain_budget"]
    first, second = front["members"]
    # the second budget starts where the first left alpha, but never below the config's: the first turned this
    # too-strong alpha down, and a looser budget restarting from the turned-down one forgot less than the tighter
    assert first["final_alpha"] < 50.0 and second["start_alpha"] == max(first["final_alpha"], 50.0) == 50.0
    assert second["warm_start"] == ("budget-1.05" if first["in_budget"] else None)
    assert (out / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    results_dir = tmp_path / "evaluation"
    results_dir.mkdir()
    html_path, markdown_path = write_report(write_results(results_dir, make_results(results_dir)),
                                            front_path=out / "front.json")
    assert "## Trade-off front" in markdown_path.read_text() and "| 1.05 |" in markdown_path.read_text()
    assert "<h2>Trade-off front</h2>" in html_path.read_text() and (results_dir / "front.png").is_file()


def test_the_default_budget_fits_the_model_and_its_evaluator(tiny_model_dir, tiny_evaluator_dir, other_families,
                                                             tmp_path):
    def default(model_dir, evaluator, steps_given=False, **knobs):
        config = UnlearnConfig(forget_classes=["Cat"], budget_evaluator=str(evaluator), **knobs)
        return config, apply_default_budget(config, model_dir, steps_given=steps_given)

    config, lines = default(tiny_model_dir, tiny_evaluator_dir)
    assert config.retain_budget == DEFAULT_RETAIN_BUDGET == 1.15 and config.budget_metric == "fid"
    assert (config.steps, config.checkpoint_every) == (500, 100) and len(lines) == 1 and "--alpha" in lines[0]
    budget_module.check_budget(config)
    # no evaluator of the model's data (missing, or not knowing the class): the hole errors, said so
    config, lines = default(tiny_model_dir, tmp_path / "missing")
    assert config.budget_metric == "hole-mse" and budget_module.resolved_forget_metric(config) == "hole-mse"
    assert "retain hole error" in lines[0] and f"no evaluator at {tmp_path / 'missing'}" in lines[1]
    config = UnlearnConfig(forget_classes=["Unicorn"], budget_evaluator=str(tiny_evaluator_dir))
    lines = apply_default_budget(config, tiny_model_dir, steps_given=False)
    assert config.budget_metric == "hole-mse" and "does not know Unicorn" in lines[1]
    # an evaluator the user named is kept as given (the run refuses it if it does not fit)
    config = UnlearnConfig(forget_classes=["Cat"], budget_evaluator=str(tmp_path / "missing"))
    apply_default_budget(config, tiny_model_dir, steps_given=False, evaluator_given=True)
    assert config.budget_metric == "fid"
    # diffusion samples to measure: a smaller sample, measured less often, over a longer run
    config, _ = default(other_families["diffusion"], tiny_evaluator_dir)
    assert (config.steps, config.checkpoint_every, config.budget_images) == (1000, 250, 128)
    # a step count the user gave is kept, and measured at least MIN_MEASUREMENTS times
    config, _ = default(other_families["diffusion"], tiny_evaluator_dir, steps_given=True, steps=6)
    assert (config.steps, config.checkpoint_every) == (6, 1)
    config, _ = default(tiny_model_dir, tiny_evaluator_dir, steps_given=True, steps=900)
    assert (config.steps, config.checkpoint_every) == (900, 100)
    budget_module.check_budget(config)


def test_unlearn_without_a_forget_weight_is_budgeted_and_with_one_is_not(trained_mae, tiny_evaluator_dir, tmp_path):
    base = ["unlearn", "--model", str(trained_mae), "--forget-classes", "Cat", "--steps", "8",
            "--evaluator", str(tiny_evaluator_dir)]
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "default")])
    assert result.exit_code == 0, result.output
    assert "budgeted run (the default)" in result.output and "--alpha for a fixed one" in result.output
    run = json.loads((tmp_path / "default" / "run.json").read_text())
    assert run["config"]["retain_budget"] == DEFAULT_RETAIN_BUDGET and run["config"]["checkpoint_every"] == 2
    assert [entry["step"] for entry in run["budget"]["path"]] == [0, 2, 4, 6, 8]
    result = runner.invoke(app, ["unlearn", "--model", str(trained_mae), "--forget-classes", "Cat", "--steps", "8",
                                 "--alpha", "0.25", "--out", str(tmp_path / "fixed")])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "fixed" / "run.json").read_text())
    assert "retain_budget" not in run["config"] and "budget" not in run and "budgeted" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--retain-budget", "1.0"], "retain_budget must be a finite number > 1"),
    (["--retain-budget", "0.9"], "retain_budget must be a finite number > 1"),
    (["--retain-budget", "abc"], "--retain-budget expects a number, e.g. 1.10; got 'abc'"),
    (["--retain-budget", "nan"], "retain_budget must be a finite number > 1"),
    (["--retain-budget", "1.1", "--budget-metric", "psnr"],
     "unknown budget metric 'psnr'; available: fid .*; hole-mse"),
    (["--retain-budget", "1.1", "--forget-metric", "fid"], "unknown forget metric 'fid'; available: recognition"),
    (["--retain-budget", "1.1", "--forget-goal", "2"], "forget_goal must lie in \\(0, 1\\)"),
    (["--retain-budget", "1.1", "--method", "retrain"], "retrain has no forget weight to control"),
    (["--front", "1.05,1.1", "--method", "retrain"], "retrain has no forget weight to control"),
    (["--front", "1.05,x"], "--front expects budgets separated by commas"),
    (["--front", "1.05,0.9"], "retain_budget must be a finite number > 1"),
    (["--front", "1.05", "--retain-budget", "1.1"], "give --front or --retain-budget"),
    (["--alpha", "0.25", "--evaluator", "somewhere"], "--evaluator only apply to a budgeted run"),
    (["--alpha", "0.25", "--budget-metric", "fid"], "--budget-metric only apply to a budgeted run"),   # the default
    (["--evaluator", "somewhere"], "evaluator directory not found: somewhere"),   # the default budget, as named
    (["--steps", "1"], "needs at least 2.*--alpha"),                               # too short to budget
    (["--retain-budget", "1.1", "--evaluator", "nowhere"], "evaluator directory not found: nowhere"),
    (["--retain-budget", "1.1", "--steps", "3", "--checkpoint-every", "2"], "needs at least 2.*--checkpoint-every"),
])
def test_bad_budget_input_is_refused_with_one_line(tiny_model_dir, tmp_path, monkeypatch, capsys, args, message):
    import re
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["i2i-unlearn", "unlearn", "--model", str(tiny_model_dir), "--out", str(out),
                                      "--forget-classes", "Cat", *args])
    monkeypatch.delenv("I2I_UNLEARN_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(message, lines[0]), lines
    assert not out.exists()


class _ScriptedProbe:
    """Scores given in advance (retain, forget and their replicates), to check the controller's reading of them."""
    forget_metric, retain_metric = "recognition", "fid"

    def __init__(self, scores, frame=None):
        self.scores, self.frame = list(scores), frame

    def measure(self, model):
        return self.scores.pop(0)

    def frame_alone_recognition(self):
        return self.frame

    def use_hole_error_for_forgetting(self):
        self.forget_metric = "hole-mse"

    forget_ratio = ValidationProbe.forget_ratio


def _scores(retain, retain_spread, forget, forget_spread=0.0):
    steps = torch.linspace(-1, 1, 50, dtype=torch.float64)
    return {"retain": retain, "forget": forget, "retain_replicates": (retain + retain_spread * steps).tolist(),
            "forget_replicates": (forget + forget_spread * steps).tolist()}


def test_in_budget_means_the_upper_end_of_the_retain_interval_and_forgetting_nothing_is_said(tiny_model_dir,
                                                                                             tmp_path):
    from i2i_unlearn.controllers.budget import BudgetController
    from i2i_unlearn.methods import get_method
    model = load_model(tiny_model_dir)
    config = UnlearnConfig(forget_classes=["Cat"], retain_budget=1.10, forget_goal=None, alpha=0.1)
    original = _scores(10.0, 0.0, 0.8, 0.0)
    steady = _scores(10.5, 0.1, 0.2, 0.01)     # 1.05x, a narrow interval: within 1.10
    noisy = _scores(10.6, 2.0, 0.1, 0.01)      # 1.06x on the sample, but its interval reaches above 1.10
    probe = _ScriptedProbe([original, steady, noisy])
    controller = BudgetController(config, get_method("ours", config), probe, tmp_path)
    controller.start(model, model)
    first, second = controller.measure(1, model), controller.measure(2, model)
    path = controller.state["path"]
    assert not first and not second and path[1]["in_budget"] and not path[2]["in_budget"]
    assert path[2]["retain_ratio"] < 1.10 < path[2]["retain_ratio_hi"]
    assert controller.state["best"]["step"] == 1                    # the noisy point forgets more but is not kept
    assert "FORGOT NOTHING" not in controller.message()
    unchanged = BudgetController(config, get_method("ours", config),
                                 _ScriptedProbe([original, _scores(10.1, 0.0, 0.78, 0.2)]), tmp_path / "b")
    unchanged.start(model, model)
    unchanged.measure(1, model)
    assert "FORGOT NOTHING MEASURABLE" in unchanged.message() and unchanged.summary()["forgot_measurably"] is False


def test_a_class_recognised_from_the_frame_alone_is_measured_by_the_hole_error(tiny_model_dir, tmp_path):
    from i2i_unlearn.controllers.budget import BudgetController
    from i2i_unlearn.methods import get_method
    config = UnlearnConfig(forget_classes=["Cat"], retain_budget=1.10, alpha=0.1)
    probe = _ScriptedProbe([_scores(10.0, 0.0, 0.8), _scores(10.0, 0.0, 0.05)], frame=0.7)  # 0.7 >= 0.8 x 0.8
    controller = BudgetController(config, get_method("ours", config), probe, tmp_path)
    controller.start(load_model(tiny_model_dir), load_model(tiny_model_dir))
    assert probe.forget_metric == "hole-mse" and controller.state["frame_alone_recognition"] == 0.7
    assert controller.state["original"]["forget"] == 0.05    # measured again, by the hole error
