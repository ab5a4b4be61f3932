"""Is each shipped original competent enough to have something to forget? Scores each model on the
test split (center inpainting 1/2, forget Cat) against the bar of the competent-originals issue:
forget-class recognition of its outputs >= 0.8 x the evaluator's on the real images, and retain
FID <= 1/4 of the mean-image fill's. Writes benchmarks/results/competence.json and .md with each
model's recipe, training wall time and validation check.

    .venv/bin/python benchmarks/competence.py pretrained/mae-animal-mnist pretrained/diffusion-animal-mnist
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from i2i_unlearn.checkpoints import versions, write_json_atomic, write_text_atomic
from i2i_unlearn.config import TaskConfig
from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
from i2i_unlearn.evaluation.targets import GROUND_TRUTH, MEAN_FILL
from i2i_unlearn.runs import total_wall_time

from _shared import ROOT, command_line, relative

RECOGNITION_BAR = 0.8     # x the evaluator's recognition of the real forget images
RETAIN_FID_BAR = 0.25     # x the mean-image fill's retain FID


def competence(results: dict) -> dict:
    m = results["metrics"]
    original = m["original"]
    recognition_limit = RECOGNITION_BAR * m[GROUND_TRUTH]["forget"]["recognition"]
    fid_limit = RETAIN_FID_BAR * m[MEAN_FILL]["retain"]["fid"]
    return {"forget_recognition": original["forget"]["recognition"], "forget_recognition_limit": round(recognition_limit, 4),
            "real_forget_recognition": m[GROUND_TRUTH]["forget"]["recognition"],
            "retain_fid": original["retain"]["fid"], "retain_fid_limit": round(fid_limit, 4),
            "mean_fill_retain_fid": m[MEAN_FILL]["retain"]["fid"],
            "forget_fid": original["forget"]["fid"], "retain_similarity": original["retain"]["similarity"],
            "competent": original["forget"]["recognition"] >= recognition_limit and original["retain"]["fid"] <= fid_limit}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--evaluator", default=str(ROOT / "pretrained" / "evaluator-animal-mnist"))
    parser.add_argument("--forget-classes", default="Cat")
    parser.add_argument("--split", default="test")
    parser.add_argument("--name", default="competence")
    args = parser.parse_args()
    path = ROOT / "benchmarks" / "results" / f"{args.name}.json"
    record = json.loads(path.read_text()) if path.is_file() else {"models": {}}
    record.update(versions=versions())
    for model in args.models:
        out = ROOT / "runs" / "competence" / Path(model).name
        results = evaluate_model_dirs({"original": model}, TaskConfig("center-inpaint", 0.5), args.evaluator, out,
                                      forget_classes=args.forget_classes.split(","), split=args.split, overwrite=True)
        run = json.loads((Path(model) / "run.json").read_text())
        record["models"][relative(model, ROOT)] = {
            "command": command_line(__file__),
            "split": results["split"], "sampler_steps": results["settings"]["sampler_steps"]["original"],
            "recipe": run["config"], "training_wall_time_s": total_wall_time(run),
            "validation_check": run.get("validation_check"), "weights_sha256": results["models"]["original"]["weights_sha256"],
            **competence(results)}
        write_json_atomic(path, record)
    write_text_atomic(path.with_suffix(".md"), markdown(record))
    print(markdown(record))


def markdown(record: dict) -> str:
    lines = ["Competence of the shipped originals (center inpainting 1/2, forget Cat; the bar: recognition >= "
             f"{RECOGNITION_BAR} x real, retain FID <= {RETAIN_FID_BAR} x mean fill).", "",
             "| model | split | Cat recognition (bar) | retain FID (bar) | forget FID | retain sim. | training | competent |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in record["models"].items():
        lines.append(f"| `{name}` | {m['split']['scored']} | {m['forget_recognition']:.3f} (>= {m['forget_recognition_limit']:.3f}) | "
                     f"{m['retain_fid']:.2f} (<= {m['retain_fid_limit']:.2f}) | {m['forget_fid']:.2f} | "
                     f"{m['retain_similarity']:.3f} | {m['recipe']['steps']} steps, {m['training_wall_time_s']:.0f} s | "
                     f"{'**yes**' if m['competent'] else 'NO'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
