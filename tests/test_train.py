import json

import torch

from i2i_unlearn.config import DataConfig
from i2i_unlearn.data import load_split
from i2i_unlearn.models import load_model
from i2i_unlearn.train import validation_check


def test_training_ends_with_a_validation_check_recorded_in_run_json(tiny_model_dir):
    record = json.loads((tiny_model_dir / "run.json").read_text())
    # the machine beside the wall time: two identical trainings took 8316 s and 3470 s on two machines
    assert record["host"]["cores"] >= 1 and record["host"]["matmul_gflops"] > 0
    check = record["validation_check"]
    split = load_split(DataConfig())
    assert check["count"] == len(split.val) == 500 and check["task"] == {"name": "center-inpaint", "ratio": 0.5}
    # the tiny fixture trains 4 steps: no better than the mean fill, and the record says so
    assert check["ratio_to_mean_fill"] > 0.75 and check["learned"] is False
    assert check["ratio_to_mean_fill"] == round(check["hidden_mse"] / check["mean_fill_hidden_mse"], 4)


def test_a_model_that_learned_nothing_is_warned_about_and_one_that_did_is_not(tiny_model_dir, capsys):
    split = load_split(DataConfig())
    val = split.val.subset(torch.arange(40))
    model = load_model(tiny_model_dir)
    assert validation_check(model, val, split.train)["learned"] is False
    assert "WARNING: this model has not clearly learned" in capsys.readouterr().err

    class Oracle(type(model)):          # draws the true hole: the best a model can do
        def generate(self, x, mask, generator=None):
            return x
    model.__class__ = Oracle
    check = validation_check(model, val, split.train)
    assert check["learned"] is True and check["hidden_mse"] == 0
    assert "WARNING" not in capsys.readouterr().err
