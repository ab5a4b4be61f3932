"""How much do two trainings of the same recipe differ? Trains the original recipe and `retrain`
(the same recipe on the retain classes only) under several training seeds, scores every model on
the same held-out images (center inpainting 1/2, one evaluation), and writes the spread to
benchmarks/results/<name>.json and .md. Seed 0 of the original is the shipped model itself
(trained with the recipe's seed 0), and so is the shipped retrained reference for its recorded seed; another seed
that benchmarks/train_references.py has trained (pretrained/<model>-seed<N>) is used as it is.

    .venv/bin/python benchmarks/retrain_spread.py --model pretrained/mae-animal-mnist \
        --retrained pretrained/mae-animal-mnist-without-cat --seeds 0,1,2
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from pathlib import Path

from i2i_unlearn.checkpoints import CHECKPOINTS, versions, write_json_atomic, write_text_atomic
from i2i_unlearn.config import TaskConfig, UnlearnConfig
from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
from i2i_unlearn.models import load_model
from i2i_unlearn.train import train
from i2i_unlearn.lineage import training_config
from i2i_unlearn.unlearn import unlearn
from i2i_unlearn.runs import total_wall_time

from _shared import ROOT, command_line, relative

SCORES = [("retain", "fid"), ("retain", "similarity"), ("forget", "fid"), ("forget", "recognition")]


def beside(shipped: Path, seed: int) -> Path:
    """Where benchmarks/train_references.py keeps another training seed of a shipped model."""
    return shipped.parent / f"{shipped.name}-seed{seed}"


def _is_model(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "pretrained" / "mae-animal-mnist"))
    parser.add_argument("--evaluator", default=str(ROOT / "pretrained" / "evaluator-animal-mnist"))
    parser.add_argument("--forget-classes", default="Cat")
    parser.add_argument("--retrained", default=None,
                        help="a shipped `retrain` of --model (used for the seed its run.json records)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--name", default=None, help="default: retrain_spread_<model folder>")
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    shipped = Path(args.model)
    name = args.name or f"retrain_spread_{shipped.name.replace('-', '_')}"
    work = Path(args.work) if args.work else ROOT / "runs" / name
    forget = args.forget_classes.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    recipe = training_config(load_model(shipped))

    models = {}
    for seed in seeds:
        original = work / f"original-seed{seed}"
        if seed == recipe.seed:
            original = shipped
        elif _is_model(beside(shipped, seed)):   # trained by benchmarks/train_references.py: nothing to train
            original = beside(shipped, seed)
        elif not (original / "model.safetensors").is_file():
            config = copy.deepcopy(recipe)
            config.seed = seed
            train(config, original, overwrite=True, resume=(original / CHECKPOINTS).is_dir())
        models[f"original-seed{seed}"] = original
    shipped_retrained_seed = None
    if args.retrained:
        run = json.loads((Path(args.retrained) / "run.json").read_text())
        if run["kind"] != "retrain" or run["inputs"]["forget_classes"] != forget:
            sys.exit(f"error: --retrained {args.retrained} is a {run['kind']} run without "
                     f"{run['inputs'].get('forget_classes')}, not a retrain without {forget}")
        shipped_retrained_seed = run["config"]["seed"]
    for seed in seeds:
        retrained = work / f"retrained-seed{seed}"
        if seed == shipped_retrained_seed:
            retrained = Path(args.retrained)
        elif args.retrained and _is_model(beside(Path(args.retrained), seed)):
            retrained = beside(Path(args.retrained), seed)
        elif not (retrained / "model.safetensors").is_file():
            unlearn(shipped, UnlearnConfig(method="retrain", forget_classes=forget, seed=seed), retrained,
                    overwrite=True)
        models[f"retrained-seed{seed}"] = retrained

    results = evaluate_model_dirs(models, TaskConfig("center-inpaint", 0.5), args.evaluator, work / "evaluation",
                                  forget_classes=forget, overwrite=True)
    record = {"command": command_line(__file__),
              "model": relative(shipped, ROOT), "forget_classes": forget, "seeds": seeds,
              "split": results["split"], "task": results["task"], "versions": versions(),
              "training_wall_time_s": {k: total_wall_time(json.loads((Path(d) / "run.json").read_text()))
                                       for k, d in models.items()},
              "validation_check": {k: json.loads((Path(d) / "run.json").read_text()).get("validation_check")
                                   for k, d in models.items()},
              "metrics": {k: results["metrics"][k] for k in models},
              "reference_rows": {k: results["metrics"][k] for k in results["reference_rows"]},
              "summary": {}}
    for group in ("original", "retrained"):
        rows = [results["metrics"][k] for k in models if k.startswith(group)]
        record["summary"][group] = {}
        for set_name, metric in SCORES:
            values = [r[set_name][metric] for r in rows]
            record["summary"][group][f"{set_name}_{metric}"] = {
                "mean": round(statistics.mean(values), 4), "min": round(min(values), 4),
                "max": round(max(values), 4), "stdev": round(statistics.stdev(values), 4) if len(values) > 1 else None,
                "values": values}
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    write_json_atomic(out, record)
    write_text_atomic(out.with_suffix(".md"), markdown(record))
    print(markdown(record))


def markdown(record: dict) -> str:
    lines = [f"Training spread of `{record['model']}` and of `retrain` without {', '.join(record['forget_classes'])} "
             f"(seeds {', '.join(map(str, record['seeds']))}; {record['split']['scored']} split, center inpainting "
             f"1/2; `{record['command']}`).", "",
             "| model | retain FID ↓ | retain sim. ↑ | forget FID | forget recog. | training time |",
             "|---|---|---|---|---|---|"]
    for key, m in record["metrics"].items():
        lines.append(f"| {key} | {m['retain']['fid']:.2f} | {m['retain']['similarity']:.3f} | {m['forget']['fid']:.2f} | "
                     f"{m['forget']['recognition']:.3f} | {record['training_wall_time_s'][key]:.0f} s |")
    for group, summary in record["summary"].items():
        cells = [f"{s['mean']:.3f} [{s['min']:.3f}, {s['max']:.3f}]" for s in summary.values()]
        lines.append(f"| **{group}: mean [min, max]** | {' | '.join(cells)} | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
