"""Benchmark: time of one unlearning step of each method vs one training step of the full model (what is
timed, and how: src/i2i_unlearn/bench/step_cost.py).

    .venv/bin/python benchmarks/step_cost.py --model pretrained/diffusion-animal-mnist
    .venv/bin/python benchmarks/step_cost.py --model pretrained/vqgan-cat-dog --methods ours

Writes benchmarks/results/step_cost_<family>.json (the results page's step-cost table reads it).
"""
from __future__ import annotations

import argparse
import functools

from i2i_unlearn.bench.step_cost import METHODS_TIMED, step_cost
from i2i_unlearn.checkpoints import write_json_atomic

from _shared import ROOT, command_line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--methods", default=",".join(METHODS_TIMED), help="comma-separated")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    record = step_cost(args.model, methods, args.images, args.repeats, command=command_line(__file__),
                       echo=functools.partial(print, flush=True))
    write_json_atomic(ROOT / "benchmarks" / "results" / f"step_cost_{record['family']}.json", record)


if __name__ == "__main__":
    main()
