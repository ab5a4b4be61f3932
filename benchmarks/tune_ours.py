"""Tuning trials for `ours` on a shipped model (forget Cat): each trial unlearns with one set of
knobs and scores the held-out sets on center inpainting 1/2 with the shipped evaluator.
Every trial is kept in benchmarks/results/<name>.json, the misses too. Without --base, a trial's
knobs override UnlearnConfig's defaults (how the MAE was tuned); with it, the base YAML's.

    .venv/bin/python benchmarks/tune_ours.py '{"alpha": 0.1}' '{"alpha": 0.25, "optim": {"lr": 2e-4}}'
    .venv/bin/python benchmarks/tune_ours.py --model pretrained/diffusion-animal-mnist \
        --base configs/unlearn-diffusion-animal-mnist.yaml --name tune_ours_diffusion '{"alpha": 0.2}'
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from i2i_unlearn.checkpoints import write_json_atomic
from i2i_unlearn.config import TaskConfig, UnlearnConfig, from_dict, load_yaml, to_dict
from i2i_unlearn.data import make_unlearn_split
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.evaluation.evaluator import load_evaluator
from i2i_unlearn.evaluation.generation import generate_outputs
from i2i_unlearn.models import load_model
from i2i_unlearn.unlearn import default_retain_classes, training_data_config, unlearn

ROOT = Path(__file__).resolve().parents[1]
TASK = TaskConfig("center-inpaint", 0.5)


def scores(model, split, evaluator):
    out = {}
    for set_name, images in (("forget", split.forget_test), ("retain", split.retain_test)):
        outputs, _ = generate_outputs(model, images.images, TASK)
        out[set_name] = {"fid": metrics.fid(evaluator, outputs, images.images),
                         "similarity": metrics.similarity(evaluator, outputs, images.images),
                         "recognition": metrics.recognition_rate(evaluator, outputs, [2])}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "pretrained" / "mae-animal-mnist"))
    parser.add_argument("--base", default=None, help="unlearning YAML the trials override")
    parser.add_argument("--name", default="tune_ours")
    parser.add_argument("trials", nargs="*", help="JSON overrides, one trial each")
    args = parser.parse_args()
    results_path = ROOT / "benchmarks" / "results" / f"{args.name}.json"
    evaluator = load_evaluator(ROOT / "pretrained" / "evaluator-animal-mnist")
    model = load_model(args.model)
    split = make_unlearn_split(training_data_config(model), UnlearnConfig(
        forget_classes=["Cat"], retain_classes=default_retain_classes(model, ["Cat"])))
    trials = json.loads(results_path.read_text()) if results_path.is_file() else []
    if not any(t["overrides"] == "original" for t in trials):
        trials.append({"overrides": "original", "scores": scores(model, split, evaluator)})
    original = next(t for t in trials if t["overrides"] == "original")["scores"]
    for text in args.trials:
        overrides = json.loads(text)
        base = to_dict(load_yaml(UnlearnConfig, args.base) if args.base else UnlearnConfig(forget_classes=["Cat"]))
        for key, value in overrides.items():
            base[key] = {**base[key], **value} if isinstance(value, dict) else value
        config = from_dict(UnlearnConfig, base)
        started = time.time()
        unlearn(args.model, config, ROOT / "runs" / "tune", overwrite=True)
        seconds = time.time() - started
        result = scores(load_model(ROOT / "runs" / "tune"), split, evaluator)
        ratios = {"retain_fid_x": result["retain"]["fid"] / original["retain"]["fid"],
                  "retain_sim_x": result["retain"]["similarity"] / original["retain"]["similarity"],
                  "forget_fid_x": result["forget"]["fid"] / original["forget"]["fid"],
                  "forget_recog_x": result["forget"]["recognition"] / original["forget"]["recognition"]}
        trials.append({"overrides": overrides, "seconds": round(seconds, 1), "scores": result,
                       "ratios": {k: round(v, 3) for k, v in ratios.items()},
                       "all_met": ratios["retain_fid_x"] <= 1.15 and ratios["retain_sim_x"] >= 0.97
                       and ratios["forget_fid_x"] >= 3 and ratios["forget_recog_x"] <= 1 / 3})
        write_json_atomic(results_path, trials)
        print(json.dumps(trials[-1]), flush=True)


if __name__ == "__main__":
    main()
