"""The demo (`make demo`): unlearn, evaluate beside the original and the retrained model, report, and say that its
table is one seed (issue 32)."""
import yaml

from i2i_unlearn.demo import run_demo
from i2i_unlearn.evaluation.results import summary_table
from i2i_unlearn.evaluation.targets import RETRAINED

KNOBS = {"method": "ours", "alpha": 0.25, "steps": 4, "batch_size": 8, "checkpoint_every": 2, "log_every": 1,
         "forget_classes": ["Cat"], "tasks": [{"name": "center-inpaint", "ratio": 0.5}],
         "optim": {"lr": 0.001, "warmup_steps": 0, "schedule": "constant"}}


def test_the_demo_prints_its_table_and_says_it_is_one_seed(tiny_model_dir, tiny_evaluator_dir, tmp_path, capsys):
    knobs = tmp_path / "knobs.yaml"
    knobs.write_text(yaml.safe_dump(KNOBS))
    out = tmp_path / "demo"
    results = run_demo(tiny_model_dir, tiny_evaluator_dir, knobs, out, retrained_dir=tiny_model_dir)
    printed = capsys.readouterr().out
    assert list(results["models"]) == ["original", "unlearned", RETRAINED]
    assert summary_table(results) in printed
    assert "one unlearning seed and one model per row: the intervals are over the test images only" in printed
    assert printed.index(summary_table(results)) < printed.index("one unlearning seed")
    assert (out / "unlearned" / "model.safetensors").is_file() and (out / "evaluation" / "results.json").is_file()
    assert f"unlearned model: {out / 'unlearned'}" in printed
