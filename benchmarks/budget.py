"""Budgeted unlearning (issue 13), scored on the test split once.

For one model: a budgeted `unlearn` per retain budget (independent runs, or with --front one front whose budgets
warm-start each other), optionally fixed knobs beside them (--fixed CONFIG: the knobs a tuning chose, or an empty
file for UnlearnConfig's defaults; the same unlearning code with its alpha fixed), then one evaluation of every
model on the same test images, with the demo's targets per model: benchmarks/results/budget-<name>.json and .md,
with the command that made them. Each budget controls its run on validation images only; test images are read
once, by the evaluation at the end. The budgeted runs start from --config (default: UnlearnConfig's defaults).

    .venv/bin/python benchmarks/budget.py --name mae --model pretrained/mae-animal-mnist --budgets 1.15 \
        --fixed configs/unlearn-mae-animal-mnist.yaml --retrained pretrained/mae-animal-mnist-without-cat

A finished run in the work folder with the same config is reused, a killed one resumed: rerun the same command.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from i2i_unlearn.front import front_member_dir, parse_budgets, unlearn_front
from i2i_unlearn.checkpoints import CHECKPOINTS, read_json, versions, write_json_atomic, write_text_atomic
from i2i_unlearn.config import TaskConfig, UnlearnConfig, load_yaml, to_dict
from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
from i2i_unlearn.evaluation.targets import RETRAINED, check_targets
from i2i_unlearn.runs import RUN_RECORD, total_wall_time
from i2i_unlearn.unlearn import unlearn

from _shared import ROOT, absolute, command_line, fmt, relative

ORIGINAL = "original"


def budget_label(budget: float) -> str:
    return f"budget {budget:g}"


def run_once(model: Path, config: UnlearnConfig, out: Path) -> dict:
    """unlearn into `out`, unless a finished run of this very config is there; a killed one is resumed."""
    record_path = out / RUN_RECORD
    finished = record_path.is_file() and not (out / CHECKPOINTS).exists()
    if not (finished and read_json(record_path)["config"] == to_dict(config)):
        unlearn(model, config, out, resume=(out / CHECKPOINTS).is_dir(), overwrite=True)
    return read_json(record_path)


def _run_entry(record: dict, directory: Path) -> dict:
    entry = {"dir": relative(directory, ROOT), "wall_time_s": total_wall_time(record), "config": record["config"]}
    budget = record.get("budget")
    if budget:
        entry["budget"] = {key: budget[key] for key in ("retain_budget", "metric", "forget_metric", "forget_goal",
                                                        "chosen", "in_budget", "stopped_early_at", "final_alpha",
                                                        "control", "message")}
    return entry


def run_benchmark(args, command: str) -> dict:
    model = Path(args.model)
    work = Path(args.work) if args.work else ROOT / "runs" / f"budget-{args.name}"
    base = load_yaml(UnlearnConfig, args.config) if args.config else UnlearnConfig()
    if args.forget_classes or not base.forget_classes:
        base.forget_classes = (args.forget_classes or "Cat").split(",")
    base.budget_evaluator = args.evaluator
    for key in ("budget_metric", "budget_images", "steps", "checkpoint_every"):
        if getattr(args, key) is not None:
            setattr(base, key, getattr(args, key))
    if args.forget_goal:
        base.forget_goal = float(args.forget_goal)
    budgets = parse_budgets(args.budgets, "--budgets")
    runs: dict[str, dict] = {}
    if args.fixed:   # named after its config file: "fixed unlearn-mae-animal-mnist"
        fixed = load_yaml(UnlearnConfig, args.fixed)
        fixed.forget_classes = base.forget_classes
        directory = work / f"fixed-{Path(args.fixed).stem}"
        runs[f"fixed {Path(args.fixed).stem}"] = _run_entry(run_once(model, fixed, directory), directory)
    if args.front:
        front_dir = work / "front"
        started = time.time()
        unlearn_front(model, base, budgets, front_dir, resume=front_dir.is_dir(), overwrite=not front_dir.is_dir())
        for budget in sorted(budgets):
            directory = front_member_dir(front_dir, budget)
            runs[budget_label(budget)] = _run_entry(read_json(directory / RUN_RECORD), directory)
        front_wall_time_s = round(time.time() - started, 1)
    else:
        for budget in budgets:
            directory = work / f"budget-{budget:g}"
            config = dataclasses.replace(base, retain_budget=budget)
            runs[budget_label(budget)] = _run_entry(run_once(model, config, directory), directory)
    model_dirs = {ORIGINAL: str(model)}
    if args.retrained:
        model_dirs[RETRAINED] = args.retrained
    model_dirs.update({label: str(absolute(entry["dir"], ROOT)) for label, entry in runs.items()})
    task = TaskConfig(args.task, args.ratio)
    results = evaluate_model_dirs(model_dirs, task, args.evaluator, work / "test", forget_classes=base.forget_classes,
                                  seed=args.seed, split="test", overwrite=True)
    record = {"command": command, "model": relative(model, ROOT), "evaluator": args.evaluator, "task": to_dict(task),
              "seed": args.seed, "forget_classes": base.forget_classes, "budgets": budgets, "front": args.front,
              "runs": runs, "results": relative(work / "test" / "results.json", ROOT),
              "metrics": results["metrics"],
              "targets": {label: check_targets(results, ORIGINAL, label) for label in runs},
              "versions": versions()}
    if args.front:
        record["front_wall_time_s"] = front_wall_time_s
        record["front_json"] = relative(work / "front" / "front.json", ROOT)
    return record


def markdown(record: dict) -> str:
    """One row per model on the test split: the scores the demo targets judge, the targets met, and for the
    budgeted runs the checkpoint kept on validation and the cost of control."""
    lines = [f"Budgeted unlearning of `{record['model']}` (forget {', '.join(record['forget_classes'])}), scored once "
             f"on the test split ({record['task']['name']} {record['task']['ratio']:g}, seed {record['seed']}); "
             f"`{record['command']}`.", "",
             "| model | forget FID | forget recog. | retain FID (x orig.) | retain sim. | targets met | missed | "
             "wall time | kept on validation | control cost |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    metrics = record["metrics"]
    original_fid = metrics[ORIGINAL]["retain"]["fid"]

    def row(name: str, run: dict | None) -> str:
        f, r = metrics[name]["forget"], metrics[name]["retain"]
        met, missed, kept, cost, wall = "", "", "", "", ""
        if run is not None:
            judged = [t for t in record["targets"][name] if t["met"] is not None]
            met = f"{sum(t['met'] for t in judged)}/{len(judged)}"
            missed = "; ".join(f"{t['name']} ({fmt(t['value'])} vs {fmt(t['limit'])})"
                               for t in judged if not t["met"])
            wall = f"{run['wall_time_s']:.0f} s"
            budget = run.get("budget")
            if budget:
                chosen = budget["chosen"]
                kept = (f"step {chosen['step']}: retain {chosen['retain_ratio']:.3f}x, forget "
                        f"{chosen['forget_ratio']:.3f}x" + ("" if budget["in_budget"] else " (**over budget**)"))
                share = budget["control"]["share_of_wall_time"]
                cost = f"{budget['control']['measure_seconds']:.0f} s"
                if share is not None:
                    cost += f" ({share:.0%})"
        return (f"| {name} | {fmt(f['fid'], 2)} | {fmt(f['recognition'])} | {fmt(r['fid'], 2)} "
                f"({r['fid'] / original_fid:.3f}x) | {fmt(r['similarity'])} | {met} | {missed} | {wall} | {kept} | "
                f"{cost} |")
    lines += [row(name, None) for name in (ORIGINAL, RETRAINED) if name in metrics]
    lines += [row(name, run) for name, run in record["runs"].items()]
    if record["front"]:
        lines += ["", f"The budgets ran as one front (tightest first, warm starts; `{record['front_json']}`) in "
                      f"{record['front_wall_time_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="results name: benchmarks/results/budget-<name>.json")
    parser.add_argument("--model", required=True, help="the model to unlearn from (left untouched)")
    parser.add_argument("--budgets", required=True, help="retain budgets, comma-separated, e.g. 1.15 or 1.02,1.05")
    parser.add_argument("--config", default=None, help="unlearning YAML of the budgeted runs (alpha: where the "
                                                       "controller starts); default: UnlearnConfig's defaults")
    parser.add_argument("--front", action="store_true", help="run the budgets as one front (warm starts)")
    parser.add_argument("--forget-classes", default=None, help="default: the config's, else Cat")
    parser.add_argument("--forget-goal", default=None, help="stop once the forget score is this x the original's")
    parser.add_argument("--budget-metric", default=None, help="fid (default) or hole-mse")
    parser.add_argument("--budget-images", type=int, default=None, help="validation images measured per side")
    parser.add_argument("--steps", type=int, default=None, help="steps of the budgeted runs")
    parser.add_argument("--checkpoint-every", type=int, default=None, help="the budgeted runs measure here")
    parser.add_argument("--fixed", default=None, help="a fixed-alpha unlearning YAML (hand-tuned knobs, or an empty "
                                                       "file for the defaults) to run and score beside the budgets")
    parser.add_argument("--retrained", default=None, help="the model retrained without the forget classes")
    parser.add_argument("--evaluator", default="pretrained/evaluator-animal-mnist",
                        help="controls the budgets (validation) and scores the test split")
    parser.add_argument("--task", default="center-inpaint")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed")
    parser.add_argument("--work", default=None, help="folder for the models (default runs/budget-<name>)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"), help="where the JSON and .md go")
    args = parser.parse_args()
    command = command_line(__file__)
    record = run_benchmark(args, command)
    path = Path(args.results) / f"budget-{args.name}.json"
    write_json_atomic(path, record)
    write_text_atomic(path.with_suffix(".md"), markdown(record))
    print(path.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
