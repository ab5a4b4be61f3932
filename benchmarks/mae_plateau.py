"""Does an MAE recipe learn, or sit on the mean-image plateau? Trains recipe variants on a dataset
and records the loss curve and the validation check `train` ends with (hole error on validation
images against the mean-image fill, center 1/2) in benchmarks/results/<name>.json.

The default dataset is thin strokes: the outlines of Animal-MNIST silhouettes (one pixel wide,
500 per class, written once as an image folder under runs/), the kind of data a user saw the
shipped recipe stall on.

    .venv/bin/python benchmarks/mae_plateau.py --steps 2000 '{}' '{"optim": {"lr": 5e-4}}'
    .venv/bin/python benchmarks/mae_plateau.py --dataset fashion-mnist --name mae_plateau_fashion '{}'

A finished one-off study: its page in benchmarks/results/ is the record; `make` and the tests do not run it.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from i2i_unlearn.checkpoints import versions, write_json_atomic, write_text_atomic
from i2i_unlearn.config import DataConfig, TrainConfig, from_dict, load_yaml, to_dict
from i2i_unlearn.data import load_dataset
from i2i_unlearn.train import train
from _shared import ROOT, command_line

OUTLINES = ROOT / "runs" / "data" / "animal-outlines"


def write_outlines(folder: Path, per_class: int = 500) -> Path:
    """Outlines of the silhouettes: pixels on, with a neighbour off (a one-pixel morphological edge)."""
    if (folder / "DONE").is_file():
        return folder
    animals = load_dataset(DataConfig())
    generator = torch.Generator().manual_seed(0)
    for label, name in enumerate(animals.class_names):
        members = torch.nonzero(animals.labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)[:per_class]]
        (folder / name).mkdir(parents=True, exist_ok=True)
        silhouettes = (animals.images[members] > 0.5).float()
        eroded = -F.max_pool2d(-silhouettes, 3, stride=1, padding=1)
        for index, outline in zip(members.tolist(), silhouettes - eroded):
            pixels = (outline[0, 2:30, 2:30].numpy() * 255).astype(np.uint8)   # back to 28x28
            Image.fromarray(pixels).save(folder / name / f"{index:05d}.png")
    (folder / "DONE").write_text("")
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(ROOT / "configs" / "mae-animal-mnist.yaml"))
    parser.add_argument("--dataset", default="outlines", help="outlines (default), or a DataConfig dataset name")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's step count")
    parser.add_argument("--name", default="mae_plateau")
    parser.add_argument("variants", nargs="*", default=["{}"], help="JSON overrides of the recipe, one run each")
    args = parser.parse_args()
    os.chdir(ROOT)
    results_path = ROOT / "benchmarks" / "results" / f"{args.name}.json"
    record = json.loads(results_path.read_text()) if results_path.is_file() else {"runs": []}
    command = command_line(__file__)
    record.update(versions=versions())
    for text in args.variants:
        recipe = to_dict(load_yaml(TrainConfig, args.recipe))
        for key, value in json.loads(text).items():
            recipe[key] = {**recipe[key], **value} if isinstance(value, dict) else value
        if args.dataset == "outlines":
            write_outlines(OUTLINES)   # recorded relative to the repository (main() runs from there)
            recipe["data"].update(dataset="image-folder", root=str(OUTLINES.relative_to(ROOT)))
        else:
            recipe["data"].update(dataset=args.dataset, root=None)
        if args.steps:
            recipe["steps"] = args.steps
        config = from_dict(TrainConfig, recipe)
        out = ROOT / "runs" / args.name / f"run-{len(record['runs'])}"
        started = time.time()
        train(config, out, overwrite=True)
        run = json.loads((out / "run.json").read_text())
        log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
        record["runs"].append({"command": command, "overrides": json.loads(text), "dataset": args.dataset,
                               "steps": config.steps,
                               "wall_time_s": round(time.time() - started, 1),
                               "loss_curve": {e["step"]: e["loss"] for e in log[::max(1, len(log) // 20)]},
                               "final_loss": log[-1]["loss"], "validation_check": run["validation_check"],
                               "recipe": to_dict(config)})
        write_json_atomic(results_path, record)
        write_text_atomic(results_path.with_suffix(".md"), markdown(record))
        print(json.dumps({k: record["runs"][-1][k] for k in ("overrides", "final_loss", "validation_check")}),
              flush=True)


def markdown(record: dict) -> str:
    lines = ["MAE recipe variants: loss curve and the validation check `train` ends with (hole MSE, center 1/2, "
             "against the mean-image fill; 'learned' is below 0.75x). Each row's command is in the JSON.", "",
             "| dataset | overrides | steps | loss at 10 % / 50 % / end | hole MSE | mean fill | ratio | learned | time |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run in record["runs"]:
        curve = list(run["loss_curve"].values())
        check = run["validation_check"]
        lines.append(f"| {run['dataset']} | `{json.dumps(run['overrides'])}` | {run['steps']} | "
                     f"{curve[len(curve) // 10]:.3f} / {curve[len(curve) // 2]:.3f} / {run['final_loss']:.3f} | "
                     f"{check['hidden_mse']:.4f} | {check['mean_fill_hidden_mse']:.4f} | "
                     f"{check['ratio_to_mean_fill']:.2f} | {'yes' if check['learned'] else '**no**'} | "
                     f"{run['wall_time_s']:.0f} s |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
