import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from i2i_unlearn.cli import app
from i2i_unlearn.errors import UserError

runner = CliRunner()


def _error(args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert isinstance(result.exception, UserError), result.output
    return str(result.exception)


def test_list_shows_every_registry():
    for what, expected in (("methods", ["ours", "max-loss", "noisy-label", "retain-label", "random-encoder",
                                        "retrain", "ours-substitute", "ours-decoder", "undo"]),
                           ("models", ["diffusion", "mae", "vqgan"]),
                           ("datasets", ["animal-mnist", "fashion-mnist", "image-folder", "hf-dataset"])):
        result = runner.invoke(app, ["list", what])
        assert result.exit_code == 0
        assert [line.split()[0] for line in result.output.splitlines()] == expected
    assert "choose one of" in _error(["list", "everything"])


def test_list_methods_loads_no_model_family():
    """`list methods` answers in the time torch takes to import: the families' transformers and diffusers stay out."""
    code = ("import sys; from typer.testing import CliRunner; from i2i_unlearn.cli import app; "
            "assert CliRunner().invoke(app, ['list', 'methods']).exit_code == 0; "
            "print(sorted(m for m in ('transformers', 'diffusers') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


@pytest.mark.parametrize("args, message", [
    (["--forget-classes", "Unicorn"], "unknown class name.*known: Bear, Bird, Cat"),
    ([], "forget set is empty"),
    (["--forget-classes", "Cat", "--retain-classes", "Cat,Dog"], "both forgotten and retained"),
    (["--forget-classes", "Cat", "--alpha", "-1"], "alpha must be >= 0"),
    (["--forget-classes", "Cat", "--method", "magic"], "unknown method 'magic'; available: ours"),
    (["--forget-classes", "Cat", "--noise", "pink"], "unknown noise type"),
    (["--forget-classes", "Cat", "--noise-context", "hole"], "unknown noise_context 'hole'; available: noise"),
    (["--forget-classes", "Cat", "--method", "max-loss", "--noise-context", "noise"], "method max-loss has its own"),
    (["--forget-files", "nope.txt"], "forget file list not found"),
    # issue 30: silent-wrong paths are refused before any work
    (["--forget-classes", "Dog", "--forget-files", "nope.txt"], r"--forget-files\), not both"),
    (["--forget-classes", "Cat", "--budget-metric", "fid"], "--budget-metric only apply to a budgeted run"),
    (["--forget-classes", "Cat", "--evaluator", "x", "--forget-goal", "0.3"], "--forget-goal, --evaluator only apply"),
])
def test_unlearn_bad_input_is_refused_and_writes_nothing(tiny_model_dir, tmp_path, args, message):
    out = tmp_path / "out"
    assert re.search(message, _error(
        ["unlearn", "--model", tiny_model_dir, "--out", out, "--steps", "1", "--alpha", "0.25", *args]))
    assert not out.exists()


def test_mask_ratio_outside_the_unit_interval_is_refused(tiny_model_dir, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("tasks: [{name: center-inpaint, ratio: 1.5}]\n")
    assert "ratio must be in (0, 1)" in _error(["unlearn", "--model", tiny_model_dir, "--out", tmp_path / "o",
                                                 "--forget-classes", "Cat", "--config", config])
    config.write_text("stepz: 3\n")
    assert "unknown key(s) stepz" in _error(["unlearn", "--model", tiny_model_dir, "--out", tmp_path / "o",
                                             "--forget-classes", "Cat", "--config", config])


def test_existing_output_needs_overwrite_and_the_input_model_is_never_the_output(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    base = ["unlearn", "--model", tiny_model_dir, "--forget-classes", "Cat", "--steps", "1", "--alpha", "0.25"]
    assert "already exists" in _error([*base, "--out", out])
    assert (out / "keep.txt").read_text() == "mine"
    assert "it is the input" in _error([*base, "--out", tiny_model_dir, "--overwrite"])
    # a folder that contains the input model, or lies inside it, is refused too: --overwrite would delete it
    assert "contains the input" in _error([*base, "--out", tiny_model_dir.parent, "--overwrite"])
    assert "lies inside the input" in _error([*base, "--out", tiny_model_dir / "sub", "--overwrite"])
    assert "contains the input" in _error(["evaluate", "--model", f"original={tiny_model_dir}", "--forget-classes",
                                           "Cat", "--out", tiny_model_dir.parent, "--overwrite"])
    assert (tiny_model_dir / "model.safetensors").is_file()
    # --overwrite replaces an earlier output only, not a folder of the user's (tests/test_runs.py)
    assert "did not write" in _error([*base, "--out", out, "--overwrite"])
    assert (out / "keep.txt").read_text() == "mine"
    (out / "run.json").write_text("{}")   # a run.json is no proof the tool wrote the folder (issue 30)
    assert "did not write" in _error([*base, "--out", out, "--overwrite"])
    earlier = tmp_path / "earlier"         # an earlier output of the tool is replaced
    assert runner.invoke(app, [str(a) for a in [*base, "--out", earlier]]).exit_code == 0
    result = runner.invoke(app, [str(a) for a in [*base, "--out", earlier, "--overwrite"]])
    assert result.exit_code == 0, result.output
    assert (earlier / "model.safetensors").is_file() and (out / "keep.txt").read_text() == "mine"


def test_errors_print_one_line_without_traceback(tmp_path):
    # `python -m i2i_unlearn` (the package's __main__) is the command: the same exit code and message
    result = subprocess.run([sys.executable, "-m", "i2i_unlearn", "unlearn", "--model", str(tmp_path / "nope"),
                             "--out", str(tmp_path / "out"), "--forget-classes", "Cat"],
                            capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                                 if k != "I2I_UNLEARN_DEBUG"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: model directory not found: {tmp_path / 'nope'}"]


def test_train_tokenizer_and_a_vqgan_on_it_from_the_command_line(tmp_path):
    import yaml
    from conftest import TINY_TOKENIZER, TINY_VQGAN
    tokenizer_yaml = tmp_path / "tokenizer.yaml"
    tokenizer_yaml.write_text(yaml.safe_dump({"tokenizer": TINY_TOKENIZER, "steps": 2, "batch_size": 4,
                                              "adversarial_start": 1, "checkpoint_every": 1, "log_every": 1}))
    result = runner.invoke(app, ["train-tokenizer", "--config", str(tokenizer_yaml), "--out", str(tmp_path / "tok")])
    assert result.exit_code == 0, result.output
    model = {k: v for k, v in TINY_VQGAN.items() if k != "tokenizer"}
    model_yaml = tmp_path / "vqgan.yaml"
    model_yaml.write_text(yaml.safe_dump({"model": {**model, "tokenizer_path": str(tmp_path / "tok")}, "steps": 1,
                                          "batch_size": 4, "classes": ["Cat", "Dog"], "checkpoint_every": 1}))
    result = runner.invoke(app, ["train", "--config", str(model_yaml), "--out", str(tmp_path / "vq")])
    assert result.exit_code == 0, result.output
    # a tokenizer directory is not a model, and a model directory is not a tokenizer
    assert "not a VQ tokenizer" in _error(["train", "--config", str(_with_tokenizer(model_yaml, tmp_path / "vq")),
                                           "--out", str(tmp_path / "vq2")])
    assert "is a VQ tokenizer folder, not a model" in _error(["evaluate", "--model", f"x={tmp_path / 'tok'}",
                                                            "--forget-classes", "Cat", "--out", str(tmp_path / "e")])


def _with_tokenizer(model_yaml, tokenizer_path):
    import yaml
    values = yaml.safe_load(model_yaml.read_text())
    values["model"]["tokenizer_path"] = str(tokenizer_path)
    model_yaml.write_text(yaml.safe_dump(values))
    return model_yaml


def test_evaluate_on_the_validation_split_scores_validation_images_only(tiny_model_dir, tiny_evaluator_dir, tmp_path):
    import json

    from i2i_unlearn.checkpoints import sha256_text
    from i2i_unlearn.config import DataConfig
    from i2i_unlearn.data import load_split
    result = runner.invoke(app, ["evaluate", "--model", f"original={tiny_model_dir}", "--evaluator",
                                 str(tiny_evaluator_dir), "--forget-classes", "Cat", "--split", "val",
                                 "--out", str(tmp_path / "val")])
    assert result.exit_code == 0, result.output
    assert "val split" in result.output
    results = json.loads((tmp_path / "val" / "results.json").read_text())
    val = load_split(DataConfig()).val
    cats = [i for i, label in zip(val.ids, val.labels.tolist()) if label == 2]
    assert results["split"]["scored"] == "val" and results["sets"]["forget"]["count"] == 50
    assert results["sets"]["forget"]["ids_sha256"] == sha256_text("\n".join(cats))
    assert results["split"]["parts"]["val"]["count"] == 500
    assert "held-out images: split val or test" in _error(["evaluate", "--model", f"original={tiny_model_dir}", "--forget-classes",
                                              "Cat", "--split", "train", "--out", tmp_path / "x"])


def test_a_config_files_method_is_kept_unless_the_flag_is_given(tiny_model_dir, tmp_path, monkeypatch):
    import i2i_unlearn.unlearn as unlearn_module
    seen = []
    monkeypatch.setattr(unlearn_module, "unlearn", lambda model, config, out, **kw: seen.append(config.method))
    config = tmp_path / "unlearn.yaml"
    config.write_text("method: noisy-label\nforget_classes: [Cat]\n")
    base = ["unlearn", "--model", str(tiny_model_dir), "--out", str(tmp_path / "out"), "--config", str(config)]
    assert runner.invoke(app, base).exit_code == 0
    assert runner.invoke(app, [*base, "--method", "max-loss"]).exit_code == 0
    assert runner.invoke(app, ["unlearn", "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"),
                               "--forget-classes", "Cat"]).exit_code == 0
    assert seen == ["noisy-label", "max-loss", "ours"]


def test_a_flag_that_disagrees_with_the_config_wins_and_says_so(tiny_model_dir, tmp_path, monkeypatch):
    import i2i_unlearn.unlearn as unlearn_module
    seen = []
    monkeypatch.setattr(unlearn_module, "unlearn", lambda model, config, out, **kw: seen.append(config))
    config = tmp_path / "unlearn.yaml"
    config.write_text("method: ours\nsteps: 20\nalpha: 0.1\noptim: {lr: 0.001}\n")
    base = ["unlearn", "--model", str(tiny_model_dir), "--out", str(tmp_path / "out"), "--forget-classes", "Cat",
            "--config", str(config)]
    result = runner.invoke(app, [*base, "--steps", "3", "--alpha", "0.1", "--method", "max-loss", "--lr", "2e-4",
                                 "--set", "batch_size=4", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    assert ("flags over --config and --set: --method max-loss (not ours); --steps 3 (not 20); --batch-size 8 "
            "(not 4); --lr 0.0002 (not 0.001)") in result.output   # --alpha agreed: not named
    assert (seen[0].method, seen[0].steps, seen[0].alpha, seen[0].batch_size, seen[0].optim.lr) == (
        "max-loss", 3, 0.1, 8, 2e-4)
    # a flag for a key the file leaves at its default is no disagreement
    assert "flags over" not in runner.invoke(app, [*base, "--batch-size", "8"]).output


@pytest.mark.parametrize("text, message", [
    ("steps: two\n", r"steps: expected a whole number, got 'two'"),
    ("forget_classes: Cat\n", r"forget_classes: expected a list, e.g. \[Cat\]"),
    ("alpha: [1]\n", r"alpha: expected a number"),
    ("optim: {betas: [0.9]}\n", r"optim.betas: expected 2 values"),
    ("noise: 3\n", r"noise: expected a string"),
])
def test_config_values_are_checked_against_their_types(tiny_model_dir, tmp_path, text, message):
    config = tmp_path / "unlearn.yaml"
    config.write_text(text)
    error = _error(["unlearn", "--model", tiny_model_dir, "--out", tmp_path / "out", "--config", config,
                    "--forget-classes", "Cat"])
    assert re.search(message, error) and "unlearn.yaml" in error
    assert not (tmp_path / "out").exists()


def test_yaml_scientific_notation_without_a_dot_is_a_number():
    from i2i_unlearn.config import UnlearnConfig, from_dict
    assert from_dict(UnlearnConfig, {"optim": {"lr": "1e-3"}}).optim.lr == 0.001


def test_a_negative_learning_rate_is_refused_before_anything_is_written(tiny_model_dir, tmp_path):
    error = _error(["unlearn", "--model", tiny_model_dir, "--out", tmp_path / "out", "--forget-classes", "Cat",
                    "--lr", "-0.001"])
    assert "optim.lr must be > 0, got -0.001" in error and not (tmp_path / "out").exists()


def test_a_decompression_bomb_in_an_image_folder_is_named(tmp_path, monkeypatch):
    from PIL import Image

    from i2i_unlearn.config import DataConfig
    from i2i_unlearn.data import load_dataset
    (tmp_path / "cats").mkdir()
    Image.new("L", (100, 100)).save(tmp_path / "cats" / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)   # 10,000 pixels is then over twice the limit
    with pytest.raises(UserError, match=r"refusing image .*bomb.png: more pixels than"):
        load_dataset(DataConfig(dataset="image-folder", root=str(tmp_path)))


# --- issue 30: the cases a new user hit ---

@pytest.mark.parametrize("content", [bytes(range(128, 256)) * 4, b"\x00\x01safetensors-like header\x00" * 8])
def test_a_forget_list_that_is_not_text_is_one_line_naming_the_file(tiny_model_dir, tmp_path, content):
    ids = tmp_path / "model.safetensors"
    ids.write_bytes(content)
    message = _error(["unlearn", "--model", tiny_model_dir, "--out", tmp_path / "out", "--steps", "1", "--alpha",
                      "0.25", "--forget-files", ids])
    assert str(ids) in message and "not a text file of image ids" in message and "\n" not in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("budget, message", [("inf", "finite number > 1"), ("nan", "finite number > 1"),
                                             ("1.0", "> 1")])
def test_an_impossible_retain_budget_names_what_is_allowed(tiny_model_dir, tmp_path, budget, message):
    assert message in _error(["unlearn", "--model", tiny_model_dir, "--out", tmp_path / "out", "--forget-classes",
                              "Cat", "--retain-budget", budget])


def test_a_short_budgeted_run_measures_often_enough_and_a_flag_sets_checkpoint_every(tiny_model_dir, tmp_path):
    """`--retain-budget 1.15 --steps 2` runs as the default budget with `--steps 2` does (it was refused with
    'lower checkpoint_every', a key without a flag); a too-rare --checkpoint-every names that flag."""
    result = runner.invoke(app, ["unlearn", "--model", str(tiny_model_dir), "--out", str(tmp_path / "short"),
                                 "--forget-classes", "Cat", "--retain-budget", "1.15", "--steps", "2",
                                 "--budget-metric", "hole-mse"])
    assert result.exit_code == 0, result.output
    import json
    run = json.loads((tmp_path / "short" / "run.json").read_text())
    assert run["config"]["checkpoint_every"] == 1 and run["config"]["retain_budget"] == 1.15
    assert "--checkpoint-every" in _error(["unlearn", "--model", tiny_model_dir, "--out", tmp_path / "rare",
                                           "--forget-classes", "Cat", "--retain-budget", "1.15", "--steps", "2",
                                           "--checkpoint-every", "5", "--budget-metric", "hole-mse"])


def test_evaluate_refuses_two_models_of_one_name_before_any_work(tiny_model_dir, tiny_evaluator_dir, tmp_path):
    message = _error(["evaluate", "--model", f"a={tiny_model_dir}", "--model", f"a={tiny_model_dir}",
                      "--evaluator", tiny_evaluator_dir, "--out", tmp_path / "eval"])
    assert "two models are named 'a'" in message
    assert not (tmp_path / "eval").exists()


def test_a_folder_of_another_kind_given_as_a_model_is_named(tiny_evaluator_dir, tmp_path):
    message = _error(["unlearn", "--model", tiny_evaluator_dir, "--out", tmp_path / "out", "--forget-classes", "Cat",
                      "--alpha", "0.1"])
    assert "is an evaluator folder, not a model: pass it as --evaluator" in message


def test_evaluating_models_of_different_datasets_warns(tiny_model_dir, capsys):
    import copy
    from i2i_unlearn.evaluation.evaluate import warn_on_mixed_data
    from i2i_unlearn.models import load_model
    animals = load_model(tiny_model_dir)
    clothes = copy.deepcopy(animals)
    clothes.pretrained_info = copy.deepcopy(animals.pretrained_info)
    clothes.pretrained_info["training"]["data"]["dataset"] = "fashion-mnist"
    warn_on_mixed_data({"animals": animals})
    assert capsys.readouterr().err == ""
    warn_on_mixed_data({"animals": animals, "clothes": clothes})
    err = capsys.readouterr().err
    assert "trained on different data (animals: animal-mnist, clothes: fashion-mnist)" in err
    assert "held-out animal-mnist images" in err


def test_audit_names_the_models_given_when_a_reference_is_unknown(tiny_model_dir, tmp_path):
    message = _error(["audit", "--model", f"original={tiny_model_dir}", "--model", f"unlearned={tiny_model_dir}",
                      "--reference-model", "retrained", "--out", tmp_path / "audit"])
    assert "'retrained' is neither a --model name nor a folder; the names given: original, unlearned" in message


def test_fashion_mnist_missing_names_the_flags_that_point_to_it(tmp_path):
    from i2i_unlearn.config import DataConfig
    from i2i_unlearn.data import load_dataset
    with pytest.raises(UserError) as caught:
        load_dataset(DataConfig(dataset="fashion-mnist", root=str(tmp_path / "nowhere")))
    assert "--proxy-root" in str(caught.value) and "make fashion-mnist" in str(caught.value)
    assert "data.root" not in str(caught.value)


def test_ctrl_c_says_how_to_go_on(monkeypatch, capsys):
    from i2i_unlearn import cli

    def interrupted():
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "app", interrupted)
    with pytest.raises(SystemExit) as caught:
        cli.main()
    assert caught.value.code == 130
    assert "--resume" in capsys.readouterr().err


def test_an_interrupted_run_before_its_first_checkpoint_says_to_overwrite(tiny_model_dir, tmp_path):
    from i2i_unlearn.runs import prepare_output_dir
    out = prepare_output_dir(tmp_path / "out", overwrite=False, resume=False)   # what a Ctrl-C leaves
    base = ["unlearn", "--model", tiny_model_dir, "--out", out, "--forget-classes", "Cat", "--alpha", "0.1",
            "--steps", "1"]
    assert "interrupted before its first checkpoint: rerun with --overwrite" in _error(base)
    assert "interrupted before its first checkpoint: rerun with --overwrite" in _error([*base, "--resume"])


def test_any_config_key_can_be_set_and_is_checked_like_a_config_file(tiny_model_dir, tmp_path):
    import json
    out = tmp_path / "set"
    result = runner.invoke(app, ["unlearn", "--model", str(tiny_model_dir), "--out", str(out), "--forget-classes",
                                 "Cat", "--set", "alpha=0.1", "--set", "optim.lr=2e-4", "--set", "steps=2",
                                 "--set", "tasks=[{name: outpaint, ratio: 0.5}]"])
    assert result.exit_code == 0, result.output
    assert "budgeted run" not in result.output                     # alpha set: a fixed forget weight
    config = json.loads((out / "run.json").read_text())["config"]
    assert (config["alpha"], config["optim"]["lr"], config["steps"]) == (0.1, 2e-4, 2)
    assert config["tasks"] == [{"name": "outpaint", "ratio": 0.5}]
    base = ["unlearn", "--model", tiny_model_dir, "--out", tmp_path / "bad", "--forget-classes", "Cat"]
    assert re.search(r"unknown key\(s\) stepz; known: .*steps", _error([*base, "--set", "stepz=2"]))
    assert "expects KEY=VALUE" in _error([*base, "--set", "steps"])
    assert "optim.lr" in _error([*base, "--set", "optim.lr=fast"]) or "lr" in _error([*base, "--set", "optim.lr=fast"])
    assert not (tmp_path / "bad").exists()


# every option of `unlearn` users have (issue 31: the ones that set one config field are built from the field)
UNLEARN_FLAGS = {
    "--model", "--out", "--method", "--forget-classes", "--forget-files", "--retain-classes", "--retain-size",
    "--retain-ratio", "--proxy-dataset", "--proxy-root", "--proxy-classes", "--proxy-transform", "--proxy-teacher",
    "--proxy-teacher-images", "--proxy-teacher-task", "--proxy-teacher-ratio", "--proxy-teacher-noise", "--alpha",
    "--lr", "--steps", "--checkpoint-every", "--batch-size", "--retain-batch-size", "--noise", "--feature-norm",
    "--noise-context", "--seed", "--retain-budget", "--forget-goal", "--budget-metric", "--forget-metric",
    "--evaluator", "--front", "--stop-at-auc", "--mixed-precision", "--gradient-checkpointing",
    "--no-gradient-checkpointing", "--config", "--set", "--data-root", "--resume", "--no-resume",
    "--overwrite", "--no-overwrite", "--help"}


def test_every_config_field_is_reachable_from_the_command_line_and_help_lists_the_flags(tmp_path, monkeypatch):
    import dataclasses
    import json
    import types
    import typing
    import i2i_unlearn.unlearn
    from i2i_unlearn.cli.unlearning import FIELD_FLAGS
    from i2i_unlearn.config import UnlearnConfig, field_help, with_overrides
    result = runner.invoke(app, ["unlearn", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0 and set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", result.output)) >= UNLEARN_FLAGS
    defaults = UnlearnConfig()
    for field in dataclasses.fields(UnlearnConfig):
        assert field_help(UnlearnConfig, field.name), f"{field.name} has no help text"
        # every field by --set (the default written back as YAML: JSON is YAML), those in FIELD_FLAGS by a flag too
        value = json.dumps(dataclasses.asdict(defaults)[field.name])
        assert with_overrides(UnlearnConfig(), [f"{field.name}={value}"]) == defaults
    assert set(FIELD_FLAGS) <= {field.name for field in dataclasses.fields(UnlearnConfig)}
    # each generated flag sets its field (the run itself stands in: only the config it is given is looked at)
    seen = {}
    monkeypatch.setattr(i2i_unlearn.unlearn, "unlearn", lambda model, config, out, **kwargs: seen.update(
        config=config))
    samples = {str: "x-y", int: 7, float: 0.5, list[str]: "A,B"}
    hints = typing.get_type_hints(UnlearnConfig)
    args, expected = [], {}
    for name in FIELD_FLAGS:
        hint = hints[name]
        if typing.get_origin(hint) is types.UnionType:   # X | None: X
            hint = next(h for h in typing.get_args(hint) if h is not type(None))
        flag = f"--{name.replace('_', '-')}"
        if hint is bool:   # a switch: the flag alone
            args.append(flag)
            expected[name] = True
            continue
        args += [flag, str(samples[hint])]
        expected[name] = ["A", "B"] if hint == list[str] else samples[hint]
    result = runner.invoke(app, ["unlearn", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "out"),
                                 "--retain-budget", "1.2", *args])
    assert result.exit_code == 0, result.output
    assert {name: getattr(seen["config"], name) for name in FIELD_FLAGS} == expected


def test_help_answers_without_loading_torch():
    """`i2i-unlearn --help` and a command's --help load no torch (seconds of start-up on a laptop)."""
    import subprocess
    import sys
    script = ("import sys; from typer.testing import CliRunner; from i2i_unlearn.cli import app\n"
              "for args in (['--help'], ['unlearn', '--help'], ['evaluate', '--help']):\n"
              "    result = CliRunner().invoke(app, args); assert result.exit_code == 0, result.output\n"
              "    assert '--model' in result.output or 'unlearn' in result.output\n"
              "print(sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
