"""The main job: forget a class of a shipped model with `ours`, evaluate before/after, report."""
from __future__ import annotations

import time
from pathlib import Path

from i2i_unlearn.config import TaskConfig, UnlearnConfig, load_yaml
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
from i2i_unlearn.evaluation.report import write_report
from i2i_unlearn.evaluation.results import summary_table
from i2i_unlearn.unlearn import unlearn

DEMO_TASK = TaskConfig("center-inpaint", 0.5)
EVALUATOR = Path("pretrained/evaluator-animal-mnist")
# family -> (shipped model, unlearning knobs tuned for it)
DEMOS = {
    "mae": (Path("pretrained/mae-animal-mnist"), Path("configs/unlearn-mae-animal-mnist.yaml")),
    "diffusion": (Path("pretrained/diffusion-animal-mnist"), Path("configs/unlearn-diffusion-animal-mnist.yaml")),
    "vqgan": (Path("pretrained/vqgan-cat-dog"), Path("configs/unlearn-vqgan-cat-dog.yaml")),
}


def demo_paths(family: str) -> tuple[Path, Path]:
    if family not in DEMOS:
        raise UserError(f"no demo for family {family!r}; available: {', '.join(DEMOS)}")
    return DEMOS[family]


def run_demo(model_dir: Path, evaluator_dir: Path, config_path: Path, out_dir: Path,
             forget_classes: list[str] | None = None) -> dict:
    """Unlearn with the knobs of `config_path` (tuned for the shipped model), evaluate, report."""
    started = time.time()
    for path in (model_dir, evaluator_dir):
        if not Path(path).is_dir():
            raise UserError(f"{path} not found (run the demo from the repository root)")
    config = load_yaml(UnlearnConfig, config_path)
    if forget_classes:
        config.forget_classes = forget_classes
    unlearned_dir = Path(out_dir) / "unlearned"
    unlearn(model_dir, config, unlearned_dir, overwrite=True)
    evaluation_dir = Path(out_dir) / "evaluation"
    results = evaluate_model_dirs({"original": model_dir, "unlearned": unlearned_dir}, DEMO_TASK, str(evaluator_dir),
                                  evaluation_dir, forget_classes=config.forget_classes, overwrite=True)
    html, markdown = write_report(evaluation_dir / "results.json")
    print()
    print(summary_table(results))
    print(f"\nreport: {html}\n        {markdown}\nunlearned model: {unlearned_dir}   "
          f"({time.time() - started:.0f} s)")
    return results
