"""The main job: forget a class of the shipped MAE with `ours`, then compare before and after."""
from __future__ import annotations

import time
from pathlib import Path

from i2i_unlearn.checkpoints import write_json_atomic
from i2i_unlearn.config import TaskConfig, UnlearnConfig
from i2i_unlearn.data import make_unlearn_split
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.evaluate import evaluate
from i2i_unlearn.models import load_model
from i2i_unlearn.unlearn import training_data_config, unlearn

DEMO_TASK = TaskConfig("center-inpaint", 0.5)


def run_demo(model_dir: Path, out_dir: Path, forget_classes: list[str]) -> dict:
    started = time.time()
    if not Path(model_dir).is_dir():
        raise UserError(f"model directory not found: {model_dir} (run the demo from the repository root)")
    config = UnlearnConfig(method="ours", forget_classes=forget_classes)
    unlearned_dir = Path(out_dir) / "unlearned"
    unlearn(model_dir, config, unlearned_dir, overwrite=True)
    original, unlearned = load_model(model_dir), load_model(unlearned_dir)
    split = make_unlearn_split(training_data_config(original), config)
    results = evaluate({"original": original, "unlearned": unlearned}, split, DEMO_TASK, out_dir, seed=0)
    results["wall_time_s"] = round(time.time() - started, 1)
    write_json_atomic(Path(out_dir) / "results.json", results)
    print(f"\nforget {', '.join(forget_classes)} with ours; {DEMO_TASK.name} ratio {DEMO_TASK.ratio}; "
          "mean squared error of the generated region (forget: higher = forgot; retain: lower = kept)")
    print(f"{'set':8s} {'images':>6s} {'original':>10s} {'unlearned':>10s}")
    for set_name, entry in results["sets"].items():
        scores = entry["scores"]
        print(f"{set_name:8s} {entry['count']:6d} {scores['original']['hidden_mse']:10.4f} "
              f"{scores['unlearned']['hidden_mse']:10.4f}")
    print(f"grids: {Path(out_dir) / 'grid_forget.png'}, {Path(out_dir) / 'grid_retain.png'}; "
          f"results: {Path(out_dir) / 'results.json'} ({results['wall_time_s']} s)")
    return results
