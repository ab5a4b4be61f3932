"""Choose unlearning knobs on the validation split, with the same budget for every method (the logic:
src/i2i_unlearn/bench/tune.py, whose docstring tells the tuning config, the rule and the continuation).

    .venv/bin/python benchmarks/tune.py --config benchmarks/tune-mae.yaml              # trials, choice
    .venv/bin/python benchmarks/tune.py --config benchmarks/tune-mae.yaml --methods ours   # one method first
    .venv/bin/python benchmarks/tune.py --config benchmarks/tune-mae.yaml --score-test # once, at the end

A re-tune that spans sessions keeps its record and knobs apart until it is complete (benchmarks/progress/jobs.txt):
    .venv/bin/python benchmarks/tune.py --config benchmarks/tune-mae.yaml --methods ours,max-loss \
        --results benchmarks/progress --write-to benchmarks/progress/chosen

Only `--score-test` reads test images: it scores each method's chosen trial once and records it.
Writes benchmarks/results/tune-<name>.json and .md; the trial models go to runs/tune-<name>.
"""
from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

from i2i_unlearn.bench.tune import load_tune_config, markdown, score_test, tune
from i2i_unlearn.checkpoints import write_text_atomic

from _shared import ROOT, command_line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="tuning config, e.g. benchmarks/tune-mae.yaml")
    parser.add_argument("--work", default=None, help="folder for the trial models (default runs/tune-<name>)")
    parser.add_argument("--score-test", action="store_true", help="score the chosen trials on test, once")
    parser.add_argument("--methods", default=None, help="only these methods (comma-separated); default: all")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"),
                        help="where tune-<name>.json/.md go (a re-tune can run elsewhere until it is complete)")
    parser.add_argument("--write-to", default=None,
                        help="write the chosen knobs files here instead of where the config says (with --results "
                             "elsewhere: a re-tune in progress leaves the shipped configs alone until it is complete)")
    args = parser.parse_args()
    methods = args.methods.split(",") if args.methods else None
    name = Path(args.config).stem
    results_path = Path(args.results) / f"{name}.json"
    work = Path(args.work) if args.work else ROOT / "runs" / name
    spec = load_tune_config(Path(args.config))
    if args.write_to:
        spec["write"] = {method: str(Path(args.write_to) / Path(path).name) for method, path in spec["write"].items()}
        if spec.get("like_retrained_dir"):
            spec["like_retrained_dir"] = str(Path(args.write_to) / "like-retrained")
    command = command_line(__file__)
    if args.score_test:
        score_test(spec, results_path, work, root=ROOT, command=command, methods=methods)
    else:
        tune(spec, results_path, work, root=ROOT, command=command, methods=methods,
             echo=functools.partial(print, flush=True))
    write_text_atomic(results_path.with_suffix(".md"), markdown(json.loads(results_path.read_text())))
    print(results_path.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
