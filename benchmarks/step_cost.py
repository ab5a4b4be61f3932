"""Benchmark: time of one unlearning step of each method vs one training step of the full model (what is
timed, and how: src/i2i_unlearn/bench/step_cost.py).

    .venv/bin/python benchmarks/step_cost.py --model pretrained/diffusion-animal-mnist
    .venv/bin/python benchmarks/step_cost.py --model pretrained/vqgan-cat-dog --methods ours
    .venv/bin/python benchmarks/step_cost.py --model pretrained/mae-animal-mnist --flops-only   # add counted FLOPs

Writes benchmarks/results/step_cost_<family>.json (the results page's step-cost table reads it).
"""
from __future__ import annotations

import argparse
import functools

from i2i_unlearn.bench.step_cost import METHODS_TIMED, step_cost
from i2i_unlearn.checkpoints import read_json, write_json_atomic
from i2i_unlearn.models import load_model

from _shared import ROOT, command_line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--methods", default=",".join(METHODS_TIMED), help="comma-separated")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--flops-only", action="store_true",
                        help="count each step's FLOPs and add them to the family's record, timing nothing")
    args = parser.parse_args()
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    record = step_cost(args.model, methods, args.images, args.repeats, command=command_line(__file__),
                       echo=functools.partial(print, flush=True), flops_only=args.flops_only)
    family = load_model(args.model).family
    path = ROOT / "benchmarks" / "results" / f"step_cost_{family}.json"
    if args.flops_only:   # the timed record keeps its times; the FLOPs join it with their own command
        timed = read_json(path)
        if timed.get("images", args.images) != args.images:
            raise SystemExit(f"error: {path} was timed with {timed['images']} images, not {args.images}")
        record = {**timed, **record, "flops_command": command_line(__file__)}
    write_json_atomic(path, record)


if __name__ == "__main__":
    main()
