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
                                        "retrain", "ours-substitute"]),
                           ("models", ["diffusion", "mae", "vqgan"]), ("datasets", ["animal-mnist", "fashion-mnist", "image-folder"])):
        result = runner.invoke(app, ["list", what])
        assert result.exit_code == 0
        assert [line.split()[0] for line in result.output.splitlines()] == expected
    assert "choose one of" in _error(["list", "everything"])


@pytest.mark.parametrize("args, message", [
    (["--forget-classes", "Unicorn"], "unknown class name.*known: Bear, Bird, Cat"),
    ([], "forget set is empty"),
    (["--forget-classes", "Cat", "--retain-classes", "Cat,Dog"], "both forgotten and retained"),
    (["--forget-classes", "Cat", "--alpha", "-1"], "alpha must be >= 0"),
    (["--forget-classes", "Cat", "--method", "magic"], "unknown method 'magic'; available: ours"),
    (["--forget-classes", "Cat", "--noise", "pink"], "unknown noise type"),
    (["--forget-classes", "Cat", "--noise-context", "hole"], "unknown noise_context 'hole'; available: noise"),
    (["--forget-classes", "Cat", "--method", "max-loss", "--noise-context", "noise"], "method max-loss has its own"),
    (["--forget-classes", "Cat", "--forget-files", "nope.txt"], "forget file list not found"),
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
    (out / "run.json").write_text("{}")   # an earlier run's output
    result = runner.invoke(app, [str(a) for a in [*base, "--out", out, "--overwrite"]])
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").is_file() and not (out / "keep.txt").exists()


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
    assert "unknown model family 'vq-tokenizer'" in _error(["evaluate", "--model", f"x={tmp_path / 'tok'}",
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
