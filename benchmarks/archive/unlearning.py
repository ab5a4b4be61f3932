"""Benchmark: unlearn the shipped Animal-MNIST MAE with each method, evaluate every result on
several tasks, and write benchmarks/results/<name>.json plus a markdown table for the README.

    .venv/bin/python benchmarks/unlearning.py --methods ours --tasks center-inpaint:0.5,center-inpaint:0.75

Times: training time comes from the model's run.json; unlearning time is measured here.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from i2i_unlearn.checkpoints import versions, write_json_atomic, write_text_atomic
from i2i_unlearn.config import TaskConfig, UnlearnConfig, load_yaml
from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
from i2i_unlearn.evaluation.report import write_report
from i2i_unlearn.runs import total_wall_time
from i2i_unlearn.unlearn import unlearn

from _shared import ROOT, fmt, relative


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "pretrained" / "mae-animal-mnist"))
    parser.add_argument("--evaluator", default=str(ROOT / "pretrained" / "evaluator-animal-mnist"))
    parser.add_argument("--config", default=str(ROOT / "configs" / "unlearn-mae-animal-mnist.yaml"),
                        help="base unlearning config; --methods and --set override it")
    parser.add_argument("--methods", default="ours")
    parser.add_argument("--tasks", default="center-inpaint:0.5,center-inpaint:0.75,outpaint:0.5")
    parser.add_argument("--forget-classes", default="Cat")
    parser.add_argument("--work", default=str(ROOT / "runs" / "benchmark"))
    parser.add_argument("--name", default="mae_unlearning")
    parser.add_argument("--set", action="append", default=[], help="UnlearnConfig override KEY=VALUE (JSON value)")
    args = parser.parse_args()

    forget = args.forget_classes.split(",")
    tasks = [TaskConfig(name, float(ratio)) for name, ratio in (t.split(":") for t in args.tasks.split(","))]
    training = json.loads((Path(args.model) / "run.json").read_text())
    work = Path(args.work)
    record = {"model": relative(args.model, ROOT), "base_config": relative(args.config, ROOT),
              "training_wall_time_s": total_wall_time(training), "forget_classes": forget,
              "versions": versions(), "runs": []}
    tokenizer = training["config"]["model"].get("tokenizer_path")
    if tokenizer:  # a vqgan model: its frozen tokenizer was trained first, by a run of its own
        record["tokenizer_training_wall_time_s"] = total_wall_time(json.loads((ROOT / tokenizer / "run.json").read_text()))
    for method in args.methods.split(","):
        config = load_yaml(UnlearnConfig, args.config)
        config.method, config.forget_classes = method, forget
        for override in args.set:
            key, value = override.split("=", 1)
            setattr(config, key, json.loads(value))
        started = time.time()
        unlearn(args.model, config, work / method, overwrite=True)
        seconds = time.time() - started
        run = {"method": method, "unlearning_wall_time_s": round(seconds, 1),
               "fraction_of_training_time": round(seconds / total_wall_time(training), 4),
               "fraction_of_training_time_with_tokenizer": round(
                   seconds / (total_wall_time(training) + record.get("tokenizer_training_wall_time_s", 0)), 4),
               "config_overrides": args.set, "evaluations": []}
        for task in tasks:
            out = work / f"{method}-eval-{task.name}-{task.ratio}"
            results = evaluate_model_dirs({"original": args.model, method: work / method}, task, args.evaluator, out,
                                          forget_classes=forget, overwrite=True)
            write_report(out / "results.json")
            results_targets = [t for t in results["targets"]]
            run["evaluations"].append({"task": {"name": task.name, "ratio": task.ratio}, "metrics": results["metrics"],
                                       "floors": results["floors"], "targets": results_targets})
        record["runs"].append(run)
    write_json_atomic(ROOT / "benchmarks" / "results" / f"{args.name}.json", record)
    write_text_atomic(ROOT / "benchmarks" / "results" / f"{args.name}.md", markdown(record))
    print(markdown(record))


def markdown(record: dict) -> str:
    tokenizer = record.get("tokenizer_training_wall_time_s")
    lines = [f"Forget {', '.join(record['forget_classes'])}; training took {record['training_wall_time_s']:.0f} s"
             + (f" (+ {tokenizer:.0f} s for the tokenizer)." if tokenizer else "."), "",
             "| method | task | row | forget FID ↑ | forget recog. ↓ | forget sim. ↓ | retain FID ↓ | retain sim. ↑ |"
             " retain IS ↑ |", "|---|---|---|---|---|---|---|---|---|"]
    for run in record["runs"]:
        for evaluation in run["evaluations"]:
            task = f"{evaluation['task']['name']} {evaluation['task']['ratio']}"
            for row, m in evaluation["metrics"].items():
                if row == "ground truth":
                    continue
                f, r = m["forget"], m["retain"]
                lines.append(f"| {run['method']} | {task} | {row} | {fmt(f['fid'], 2)} | {fmt(f['recognition'])} | "
                             f"{fmt(f['similarity'])} | {fmt(r['fid'], 2)} | {fmt(r['similarity'])} | "
                             f"{fmt(r['is'], 2)} |")
        lines.append(f"| {run['method']} | | unlearning time | {run['unlearning_wall_time_s']:.0f} s = "
                     f"{100 * run['fraction_of_training_time']:.1f} % of training | | | | | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
