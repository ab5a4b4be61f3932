"""Benchmark (issue 34): peak memory and seconds of `import`, `unlearn` and `evaluate` on synthetic image folders
of growing size, each command in its own process. Memory bounded by the batch means the peak barely moves from
the smallest folder to the largest (the issue's target: within 1.1x from 1,000 to 100,000 images at 256 px).

    python benchmarks/scale_memory.py                                   # 1,000 / 10,000 / 100,000 images, 256 px
    python benchmarks/scale_memory.py --sizes 50,400 --pixels 64 \
        --out runs/scale-memory/tiny.json   # a quick try (32 px is one 2 x 2 patch grid: a centre hole hides it all)
    python benchmarks/scale_memory.py --model base --pixels 224 --sizes 1000 --chain \
        --out benchmarks/results/scale_memory_base.json   # a vit-mae-base-shaped checkpoint through the whole chain

The folders (4 classes of generated patterns, JPEG), a randomly initialised Hugging Face ViTMAE and a tiny random
CLIP vision model (the evaluator: natural images have no domain classifier) are written once under --cache and
reused. Per folder: `import` of the ViTMAE (a hashed split), `unlearn` of class c0 (--steps steps, fixed alpha),
`evaluate` of the original and the unlearned model on the test split, and again with --max-eval-images (with
--chain also `audit` and `report`). Writes
JSON with the command that made it: per size and command the peak resident memory (the child's ru_maxrss, from
wait4) and the wall time, and the peak's ratio of the largest size to the smallest.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from i2i_unlearn.checkpoints import versions, write_json_atomic

from _shared import ROOT, command_line, relative

CLASSES = ("c0", "c1", "c2", "c3")
MODELS = {   # ViTMAEConfig keys: a tiny encoder (memory is the data's question), or the vit-mae-base shape
    "tiny": dict(patch_size=16, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                 decoder_hidden_size=64, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
                 decoder_intermediate_size=128),
    "base": dict(patch_size=16, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, decoder_hidden_size=512, decoder_num_hidden_layers=8,
                 decoder_num_attention_heads=16, decoder_intermediate_size=2048),
}


def pattern(rng: np.random.Generator, label: int, pixels: int) -> np.ndarray:
    """One RGB image: a grating whose orientation and colour depend on the class, with random frequency, phase,
    contrast and a soft blob, so classes differ and no two images are equal."""
    y, x = np.mgrid[0:1:pixels * 1j, 0:1:pixels * 1j]
    angle = label * np.pi / len(CLASSES) + rng.normal(0, 0.15)
    wave = np.sin(2 * np.pi * rng.uniform(3, 9) * (x * np.cos(angle) + y * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
    cy, cx = rng.uniform(0.2, 0.8, 2)
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * rng.uniform(0.05, 0.2) ** 2))
    colour = np.roll(np.array([0.8, 0.4, 0.2]), label) + rng.normal(0, 0.08, 3)
    image = 0.5 + 0.3 * rng.uniform(0.5, 1) * wave[..., None] * colour + 0.3 * blob[..., None] * (1 - colour)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def image_folder(cache: Path, count: int, pixels: int) -> Path:
    """`count` images in class sub-folders, written once (complete.json marks a finished folder)."""
    root = cache / f"folder-{count}-{pixels}px"
    if (root / "complete.json").is_file():
        return root
    rng = np.random.default_rng(count)
    for index in range(count):
        label = index % len(CLASSES)
        (root / CLASSES[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pattern(rng, label, pixels)).save(root / CLASSES[label] / f"{index:06d}.jpg", quality=90)
    (root / "complete.json").write_text(json.dumps({"images": count, "pixels": pixels}) + "\n")
    return root


def checkpoints(cache: Path, pixels: int, shape: str) -> tuple[Path, Path]:
    """A randomly initialised ViTMAE and a tiny random CLIP vision model, saved with save_pretrained (once)."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, ViTMAEConfig, ViTMAEForPreTraining
    mae, clip = cache / f"hf-mae-{shape}-{pixels}px", cache / "hf-clip-tiny"
    if not (mae / "config.json").is_file():
        torch.manual_seed(0)
        ViTMAEForPreTraining(ViTMAEConfig(image_size=pixels, num_channels=3, **MODELS[shape])).save_pretrained(mae)
    if not (clip / "config.json").is_file():
        torch.manual_seed(0)
        CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=64,
            patch_size=16, projection_dim=32)).save_pretrained(clip)
    return mae, clip


def measured(arguments: list[str], log: Path) -> dict:
    """Run `i2i-unlearn <arguments>` in a child process: its peak resident memory (MB) and wall time (s)."""
    started = time.perf_counter()
    with open(log, "w") as output:
        child = subprocess.Popen([sys.executable, "-m", "i2i_unlearn.cli", *arguments], stdout=output,
                                 stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)   # this child's own resource usage (Linux: ru_maxrss in kB)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"i2i-unlearn {' '.join(arguments)} failed (exit {child.returncode}); see {log}")
    return {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "seconds": round(time.perf_counter() - started, 1)}


def run_size(count: int, args, mae: Path, clip: Path, done: dict, save) -> dict:
    """The four commands on the folder of `count` images. `done`: what an earlier, killed run of the same settings
    measured for this size (its commands' outputs are still in the work folder): those commands are not run again.
    `save()` keeps what is measured after every command."""
    folder = image_folder(args.cache, count, args.pixels)
    work = args.cache / f"runs-{count}-{args.pixels}px-{args.model}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "data.yaml").write_text(f"split: hashed\ntest_fraction: {args.test_fraction}\n"
                                    f"val_fraction: {args.val_fraction}\n")
    evaluate = ["evaluate", "--model", f"original={work / 'model'}", "--model", f"unlearned={work / 'unlearned'}",
                "--forget-classes", CLASSES[0], "--evaluator", f"clip:{clip}", "--overwrite",
                *(["--interval-images", str(args.interval_images)] if args.interval_images else [])]
    commands = {
        "import": ["import", "--family", "mae", "--from-pretrained", str(mae), "--out", str(work / "model"),
                   "--dataset", "image-folder", "--data-root", str(folder), "--data-config", str(work / "data.yaml"),
                   "--overwrite"],
        "unlearn": ["unlearn", "--model", str(work / "model"), "--out", str(work / "unlearned"), "--forget-classes",
                    CLASSES[0], "--alpha", "0.1", "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                    "--overwrite"],
        "evaluate": [*evaluate, "--out", str(work / "evaluate")],
        "evaluate_sample": [*evaluate, "--out", str(work / "evaluate-sample"), "--max-eval-images",
                            str(args.max_eval_images)]}
    if args.chain:   # the rest of a user's chain: the audit (membership, the tell) and the report
        commands["audit"] = ["audit", "--model", f"original={work / 'model'}", "--model",
                             f"unlearned={work / 'unlearned'}", "--reference-model", "original", "--forget-classes",
                             CLASSES[0], "--evaluator", f"clip:{clip}", "--out", str(work / "audit"), "--overwrite"]
        commands["report"] = ["report", "--results", str(work / "evaluate" / "results.json"), "--audit",
                              str(work / "audit" / "audit.json")]
    for name, arguments in commands.items():
        if name not in done:
            done[name] = measured(arguments, work / f"{name.replace('_', '-')}.log")
            if name.startswith("evaluate"):
                sets = json.loads((work / name.replace("_", "-") / "results.json").read_text())["sets"]
                done[name]["images_scored"] = {set_name: info["count"] for set_name, info in sets.items()}
                # the images whose per-image features were kept (KID, per-class FID, intervals): a sample above the cap
                done[name]["interval_images"] = {set_name: info.get("interval_images")
                                                 for set_name, info in sets.items()}
            save()
    return done


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="images per folder, comma-separated")
    parser.add_argument("--pixels", type=int, default=256, help="image side")
    parser.add_argument("--model", choices=sorted(MODELS), default="tiny", help="the ViTMAE's shape")
    parser.add_argument("--steps", type=int, default=3, help="unlearning steps")
    parser.add_argument("--batch-size", type=int, default=4, help="unlearning batch (forget and retain)")
    # 30 %: the smallest folder's held-out sets (300 images) already fill a generation batch (128) and the retain
    # check's samples, so the largest is compared with a run that holds as much per batch, not with a half-empty one
    parser.add_argument("--test-fraction", type=float, default=0.3, help="hashed split: test share")
    parser.add_argument("--val-fraction", type=float, default=0.3, help="hashed split: validation share")
    parser.add_argument("--max-eval-images", type=int, default=200, help="evaluate's sample, the second time")
    parser.add_argument("--interval-images", type=int, default=None,
                        help="evaluate's cap on per-image feature rows per set (default: evaluate's)")
    parser.add_argument("--chain", action="store_true",
                        help="also `audit` (original vs unlearned) and `report`: a user's whole chain")
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "scale-memory",
                        help="where folders, checkpoints and runs are written (once)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale_memory.json")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    if args.pixels % 16:
        raise SystemExit(f"--pixels must be a multiple of the ViTMAE's patch (16), got {args.pixels}")
    args.cache.mkdir(parents=True, exist_ok=True)
    mae, clip = checkpoints(args.cache, args.pixels, args.model)
    settings = {"pixels": args.pixels, "model": args.model, "vit_mae": MODELS[args.model], "classes": len(CLASSES),
                "steps": args.steps, "batch_size": args.batch_size,
                "split": {"rule": "hashed", "test_fraction": args.test_fraction, "val_fraction": args.val_fraction},
                "evaluator": "a random tiny CLIP vision model (clip:), 64 px input",
                "max_eval_images": args.max_eval_images, "interval_images": args.interval_images,
                "chain": args.chain, "cache": relative(args.cache, ROOT)}
    partial = args.out.with_suffix(".partial.json")   # what a killed run measured: it goes on from there
    progress = json.loads(partial.read_text()) if partial.is_file() else {}
    if progress.get("settings") != settings:
        progress = {"settings": settings, "sizes": {}}

    def save():
        write_json_atomic(partial, progress)
    results = progress["sizes"]
    for count in sizes:
        print(f"{count} images at {args.pixels} px ...", flush=True)
        results[str(count)] = run_size(count, args, mae, clip, results.setdefault(str(count), {}), save)
        print(json.dumps(results[str(count)]), flush=True)
    smallest, largest = results[str(sizes[0])], results[str(sizes[-1])]
    record = {"command": command_line(__file__),
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "host": {"machine": platform.machine(), "cpus": os.cpu_count(),
                       "threads": os.environ.get("OMP_NUM_THREADS")},
              "versions": versions(), "settings": settings,
              "sizes": {str(count): results[str(count)] for count in sizes},
              "peak_ratio_largest_to_smallest": {
                  name: round(largest[name]["peak_rss_mb"] / smallest[name]["peak_rss_mb"], 3) for name in smallest}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, record)
    partial.unlink()
    print(json.dumps(record["peak_ratio_largest_to_smallest"]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
