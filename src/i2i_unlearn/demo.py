"""The main job: forget a class of a shipped model with `ours`, evaluate before/after, report."""
from __future__ import annotations

import time
from pathlib import Path

from i2i_unlearn import shipped
from i2i_unlearn.config import TaskConfig, UnlearnConfig, load_yaml
from i2i_unlearn.controllers.budget import apply_default_budget
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
from i2i_unlearn.evaluation.report import write_report
from i2i_unlearn.evaluation.results import summary_table
from i2i_unlearn.evaluation.targets import RETRAINED
from i2i_unlearn.unlearn import unlearn

DEMO_TASK = TaskConfig("center-inpaint", 0.5)
# The noise KL (do forget outputs look like the model's outputs for noise? method.md section 5) on the forget set
# only: on the retain set it would sample its 900 images a second time with every model (minutes with a sampler)
DEMO_NOISE_KL = ("forget",)
EVALUATOR = shipped.EVALUATOR
# family -> shipped model; the demo runs the default budgeted unlearning (controllers/budget.py), or with --config the
# knobs chosen on validation by benchmarks/tune.py (configs/unlearn-<model>.yaml); its reference retrained
# without Cat (if shipped) is <model>-without-cat
DEMOS = {"mae": "mae-animal-mnist", "diffusion": "diffusion-animal-mnist", "vqgan": "vqgan-cat-dog"}


def demo_paths(family: str) -> tuple[Path, Path, Path]:
    """(shipped model, its tuned knobs, its shipped retrained reference)."""
    if family not in DEMOS:
        raise UserError(f"no demo for family {family!r}; available: {', '.join(DEMOS)}")
    name = DEMOS[family]
    return shipped.pretrained(name), shipped.unlearning_knobs(name), shipped.pretrained(f"{name}-without-cat")


def demo_config(model_dir: Path, evaluator_dir: Path, config_path: Path | None,
                forget_classes: list[str] | None) -> UnlearnConfig:
    """The knobs of `config_path`, or without one the default budgeted run (budget.apply_default_budget)."""
    if config_path is not None:
        config = load_yaml(UnlearnConfig, config_path)
        if forget_classes:
            config.forget_classes = forget_classes
        return config
    config = UnlearnConfig(forget_classes=forget_classes or ["Cat"], budget_evaluator=str(evaluator_dir))
    for line in apply_default_budget(config, model_dir, steps_given=False):
        print(line)
    return config


def run_demo(model_dir: Path, evaluator_dir: Path, config_path: Path | None, out_dir: Path,
             forget_classes: list[str] | None = None, retrained_dir: Path | None = None) -> dict:
    """Unlearn (with the knobs of `config_path`, or the default budgeted run), evaluate (beside the
    model retrained without the forget classes, when there is one), report."""
    started = time.time()
    for path in (model_dir, evaluator_dir):
        if not Path(path).is_dir():
            raise UserError(f"{path} not found (run the demo from the repository root)")
    config = demo_config(model_dir, evaluator_dir, config_path, forget_classes)
    unlearned_dir = Path(out_dir) / "unlearned"
    unlearn(model_dir, config, unlearned_dir, overwrite=True)
    evaluation_dir = Path(out_dir) / "evaluation"
    models = {"original": model_dir, "unlearned": unlearned_dir}
    if retrained_dir is not None and Path(retrained_dir).is_dir():
        models[RETRAINED] = retrained_dir
    results = evaluate_model_dirs(models, DEMO_TASK, str(evaluator_dir), evaluation_dir,
                                  forget_classes=config.forget_classes, overwrite=True, noise_kl_sets=DEMO_NOISE_KL)
    html, markdown = write_report(evaluation_dir / "results.json")
    print()
    print(summary_table(results))
    print("\none unlearning seed and one model per row: the intervals are over the test images only, not over "
          "seeds (`i2i-unlearn bench` runs every method over 3 seeds against 3 retrained models)")
    print(f"\nreport: {html}\n        {markdown}\nunlearned model: {unlearned_dir}   "
          f"({time.time() - started:.0f} s)")
    return results
