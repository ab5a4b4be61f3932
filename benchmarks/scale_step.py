"""Benchmark: seconds per unlearning step and peak memory at the paper's resolution, against a training step of the
same model, in float32 and bf16 autocast, with and without gradient checkpointing (issue 34).

    python benchmarks/scale_step.py                 # vit-mae-base (224 px) and a 256 px U-Net: long on a CPU
    python benchmarks/scale_step.py --tiny          # tiny shapes of both: checks the script in a minute

The models are built from their configs with random weights (nothing is downloaded): `mae-base` has the shape of
facebook/vit-mae-base (112M parameters: 224 px, patch 16, hidden 768, 12 + 8 layers), `unet-256` that of
google/ddpm-ema-church-256 (a 256 px diffusers UNet2DModel, 114M parameters), as the diffusion family builds it
(its input is [degraded image, noisy image]). A training step is the family's own loss on `--images` random images,
backward and an AdamW step over every parameter; an unlearning step is `ours` on `--images` / 2 forget and as many
retain images (the same images in all): the student encoder forward and backward, the frozen teacher's encoder
forward twice (the retain images and the noise images), an AdamW step over the encoder. Each setting runs in a
process of its own, so its peak memory is its own: the peak resident memory of the process while it steps (the
libraries, the weights, the teacher, the optimiser state and the activations; `rss_before_steps_mb` is all but the
activations and the optimiser state), and on a GPU the peak memory torch allocated there.
Seconds per step: the median of `--repeats` steps after one warm-up step. The device is accelerate's (a GPU when
present), so the same command runs unchanged on a GPU machine.

Writes benchmarks/results/scale_step.json (--tiny: scale_step_tiny.json) with the command that made it.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from i2i_unlearn.bench.measure import Measure
from i2i_unlearn.checkpoints import read_json, versions, write_json_atomic
from i2i_unlearn.config import OptimConfig, TaskConfig, UnlearnConfig
from i2i_unlearn.host import host_speed
from i2i_unlearn.loop import autocast, make_accelerator, make_optimizer, step_generator
from i2i_unlearn.methods import UnlearnObjective, get_method
from i2i_unlearn.methods.base import set_trainable
from i2i_unlearn.models import build_model
from i2i_unlearn.tasks import make_mask, noise_image
from i2i_unlearn.train import TrainObjective

from _shared import ROOT, command_line

TASK = TaskConfig("center-inpaint", 0.5)
MODELS = {
    "mae-base": {"family": "mae", "image_size": 224, "channels": 3, "patch_size": 16, "hidden_size": 768,
                 "num_layers": 12, "num_heads": 12, "intermediate_size": 3072, "decoder_hidden_size": 512,
                 "decoder_num_layers": 8, "decoder_num_heads": 16, "decoder_intermediate_size": 2048},
    "unet-256": {"family": "diffusion", "image_size": 256, "channels": 3,
                 "block_out_channels": [128, 128, 256, 256, 512, 512],
                 "down_block_types": ["DownBlock2D"] * 4 + ["AttnDownBlock2D", "DownBlock2D"],
                 "up_block_types": ["UpBlock2D", "AttnUpBlock2D"] + ["UpBlock2D"] * 4, "layers_per_block": 2,
                 "norm_num_groups": 32, "mask_grid": 8},
}
TINY = {
    "mae-base": {**MODELS["mae-base"], "image_size": 32, "patch_size": 8, "hidden_size": 32, "num_layers": 2,
                 "num_heads": 2, "intermediate_size": 64, "decoder_hidden_size": 32, "decoder_num_layers": 1,
                 "decoder_num_heads": 2, "decoder_intermediate_size": 64},
    "unet-256": {**MODELS["unet-256"], "image_size": 32, "block_out_channels": [8, 16], "down_block_types":
                 ["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
                 "layers_per_block": 1, "norm_num_groups": 4},
}
PRECISIONS = ("no", "bf16")   # accelerate's mixed_precision values


def _batch(model, images: int, step: int) -> dict:
    """The step's random images and masks: a training batch and an unlearning batch of the same images."""
    generator = step_generator(0, step)
    x = torch.rand(images, *model.image_shape, generator=generator)
    mask = make_mask(TASK, images, x.shape[-1], model.mask_grid, generator)
    half = images // 2
    return {"generator": generator, "images": x, "mask": mask, "forget_images": x[:half], "forget_mask": mask[:half],
            "retain_images": x[half:], "retain_mask": mask[half:],
            "forget_noise": noise_image(x[:half], "batch-gaussian", generator)}


def measure(model_config: dict, kind: str, mixed_precision: str, checkpointing: bool, images: int,
            repeats: int) -> dict:
    """One setting, in this process: seconds per step (median after a warm-up step) and peak memory."""
    accelerator = make_accelerator(mixed_precision)
    device = accelerator.device
    torch.manual_seed(0)
    model = build_model(model_config).to(device)
    if kind == "train":
        trained, objective = model, TrainObjective(model)
    else:
        trained = copy.deepcopy(model)   # before the teacher is frozen: set_trainable keeps what is frozen by design
        teacher = model.eval().requires_grad_(False)
        method = get_method("ours", UnlearnConfig(forget_classes=["x"], tasks=[TASK]))
        set_trainable(trained, method.trains)
        objective = UnlearnObjective(method, trained, teacher)
    if checkpointing:
        trained.enable_gradient_checkpointing()
    parameters = [p for p in trained.parameters() if p.requires_grad]
    optimizer = make_optimizer(parameters, OptimConfig())
    objective.train()
    if device.type != "cpu":
        torch.accelerator.reset_peak_memory_stats()
    times, before_steps = [], _rss_mb()
    with Measure() as measured:
        for step in range(repeats + 1):
            batch = _batch(model, images, step)   # on the CPU: the objectives move it to the device
            started = time.perf_counter()
            with autocast(device, mixed_precision):
                loss = objective(batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if device.type != "cpu":
                torch.accelerator.synchronize()
            times.append(time.perf_counter() - started)
    return {"kind": kind, "mixed_precision": mixed_precision, "gradient_checkpointing": checkpointing,
            "device": str(device), "parameters": sum(p.numel() for p in model.parameters()),
            "trained_parameters": sum(p.numel() for p in parameters),
            "seconds_per_step": round(statistics.median(times[1:]), 4), "loss": round(float(loss.detach()), 6),
            "rss_before_steps_mb": before_steps, "peak_rss_mb": measured.record()["peak_rss_mb"],
            "peak_rss_scope": measured.scope,
            "peak_device_mb": round(torch.accelerator.max_memory_allocated() / 2 ** 20, 1)
            if device.type != "cpu" else None}


def _rss_mb() -> float | None:
    """The process's resident memory now (the libraries, the models and the optimiser, before any step): Linux."""
    try:
        line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return None
    return round(int(line.split()[1]) / 1024, 1)


def _in_own_process(arguments: dict) -> dict:
    result = subprocess.run([sys.executable, __file__, "--one", json.dumps(arguments)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise SystemExit(f"a setting failed ({arguments}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes of both models (checks the script)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--images", type=int, default=8, help="images per step (unlearning: half forget, half retain)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per setting, after one warm-up step")
    parser.add_argument("--precisions", default=",".join(PRECISIONS),
                        help="comma-separated: no (float32), bf16 (autocast; slow on a CPU without bf16 units)")
    parser.add_argument("--one", help=argparse.SUPPRESS)   # one setting, as JSON: what each child process runs
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(**json.loads(args.one))))
        return
    shapes = TINY if args.tiny else MODELS
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    if not names or set(names) - set(MODELS):
        parser.error(f"--models: choose from {', '.join(MODELS)}, got {args.models!r}")
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if not precisions or set(precisions) - set(PRECISIONS):
        parser.error(f"--precisions: choose from {', '.join(PRECISIONS)}, got {args.precisions!r}")
    out = ROOT / "benchmarks" / "results" / f"scale_step{'_tiny' if args.tiny else ''}.json"
    partial = out.with_suffix(".partial.json")   # the settings measured so far: a killed run goes on from them
    settings = {"task": vars(TASK), "images": args.images, "repeats": args.repeats}
    done = read_json(partial) if partial.is_file() else {}
    if done.get("settings") != settings:
        done = {"settings": settings, "rows": {}}
    record = {"command": command_line(__file__), **settings, "host": host_speed(), "versions": versions(),
              "models": {}}
    for name in names:
        rows = []
        for precision in precisions:
            for checkpointing in (False, True):
                for kind in ("train", "unlearn"):
                    arguments = {"model_config": shapes[name], "kind": kind, "mixed_precision": precision,
                                 "checkpointing": checkpointing, "images": args.images, "repeats": args.repeats}
                    key = json.dumps(arguments, sort_keys=True)
                    if key not in done["rows"]:
                        done["rows"][key] = _in_own_process(arguments)
                        write_json_atomic(partial, done)
                    rows.append(dict(done["rows"][key]))
                    print(f"{name} {kind} {precision} checkpointing={checkpointing}: {rows[-1]['seconds_per_step']} "
                          f"s per step, peak RSS {rows[-1]['peak_rss_mb']} MB", flush=True)
                train, unlearn = rows[-2], rows[-1]
                unlearn["to_training_step"] = round(unlearn["seconds_per_step"] / train["seconds_per_step"], 3)
        record["models"][name] = {"config": shapes[name], "rows": rows}
    write_json_atomic(out, record)
    partial.unlink()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
