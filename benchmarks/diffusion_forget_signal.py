"""Where in the diffusion schedule does `ours` have something to push on? For the untouched model
(student = teacher) and validation images of the forget class, ours's forget term at each timestep t:
the distance between the encoding of the forget image's noisy hole and the teacher's encoding of
its target input (the released code's: pure N(0, I) in the hole, the visible context kept), summed
over the U-Net's skip maps as in training. DDIM sampling starts at the largest timesteps, where the
hole's content is decided; a term near 0 there means unlearning barely changes what the sampler draws first.
Writes benchmarks/results/diffusion_forget_signal.json and .md.

    .venv/bin/python benchmarks/diffusion_forget_signal.py --model pretrained/diffusion-animal-mnist --forget-class Cat

A finished one-off study: its page in benchmarks/results/ is the record; `make` and the tests do not run it.
"""
from __future__ import annotations

import argparse
import sys

import torch
from diffusers import DDIMScheduler

from i2i_unlearn.checkpoints import versions, write_json_atomic, write_text_atomic
from i2i_unlearn.config import TaskConfig
from i2i_unlearn.data import load_split
from i2i_unlearn.models import load_model
from i2i_unlearn.tasks import make_mask
from i2i_unlearn.lineage import training_data_config
from _shared import ROOT, command_line

TIMESTEPS = [0, 50, 100, 200, 400, 600, 700, 800, 900, 999]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pretrained/diffusion-animal-mnist")
    parser.add_argument("--forget-class", default="Cat")
    parser.add_argument("--images", type=int, default=32, help="validation images of the forget class")
    parser.add_argument("--ratio", type=float, default=0.5, help="center hole side / image side")
    args = parser.parse_args()
    model = load_model(args.model).eval()
    if model.family != "diffusion":
        sys.exit(f"error: {args.model} is a {model.family} model; this benchmark reads a diffusion U-Net")
    val = load_split(training_data_config(model)).val
    images = val.images[val.labels == val.class_names.index(args.forget_class)][:args.images]
    mask = make_mask(TaskConfig("center-inpaint", args.ratio), len(images), images.shape[-1], model.mask_grid)
    context = model.sample_context(images, mask, torch.Generator().manual_seed(0))
    rows = []
    with torch.no_grad():
        for t in TIMESTEPS:
            at_t = {**context, "timesteps": torch.full_like(context["timesteps"], t)}
            own = model.encode(images, mask, at_t)
            target = model.encode_noise(images, None, mask, at_t)
            rows.append({"timestep": t, "forget_term": round(sum(torch.mean((a - b) ** 2).item()
                                                                 for a, b in zip(own, target)), 5)})
    sampler = DDIMScheduler.from_config(model.train_scheduler.config)   # as generate() samples
    sampler.set_timesteps(model.config.sampler_steps)
    record = {"command": command_line(__file__),
              "model": args.model, "weights_sha256": model.pretrained_info["weights_sha256"],
              "forget_class": args.forget_class, "images": len(images), "split": "val",
              "task": {"name": "center-inpaint", "ratio": args.ratio},
              "train_timesteps": model.config.num_train_timesteps, "sampler_steps": model.config.sampler_steps,
              "sampler_timesteps": [int(s) for s in sampler.timesteps], "rows": rows, "versions": versions()}
    out = ROOT / "benchmarks" / "results" / "diffusion_forget_signal"
    write_json_atomic(out.with_suffix(".json"), record)
    largest = max(r["forget_term"] for r in rows)
    lines = [f"`ours`'s forget term on the untouched model, by diffusion timestep ({len(images)} validation "
             f"{args.forget_class} images, center hole {args.ratio}; `{record['command']}`). DDIM with "
             f"{record['sampler_steps']} steps visits t = {', '.join(map(str, record['sampler_timesteps'][:4]))}, ... "
             f"(its noisiest steps come first, where coarse content forms).", "",
             "| timestep t | forget term | share of the largest |", "|---:|---:|---:|"]
    lines += [f"| {r['timestep']} | {r['forget_term']:.4f} | {r['forget_term'] / largest:.2f} |" for r in rows]
    write_text_atomic(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
