"""Write docs/results.md (and its plots) and docs/targets.json from benchmark JSON alone, then the README's results
summary from docs/targets.json: results are generated, never typed.

    .venv/bin/python benchmarks/make_results_page.py                      # every benchmarks/results/bench-*/bench.json
    .venv/bin/python benchmarks/make_results_page.py --bench benchmarks/results/bench-mae/bench.json \
        --out docs/results.md

The page is made by the package (src/i2i_unlearn/bench/page/); this is its entry point with the repository's paths.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _shared import ROOT

from i2i_unlearn.bench.page import build
from i2i_unlearn.bench.page.summary import write_summary
from i2i_unlearn.bench.page.targets_file import write_targets
from i2i_unlearn.checkpoints import read_json
from i2i_unlearn.errors import UserError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", action="append", type=Path, default=None,
                        help="a bench.json (repeatable); default: benchmarks/results/bench-*/bench.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md",
                        help="the page whose results summary block is rewritten from targets.json")
    args = parser.parse_args(argv)
    results = ROOT / "benchmarks" / "results"
    paths = args.bench or sorted(results.glob("bench-*/bench.json"))
    step_costs = [p for p in sorted(results.glob("step_cost_*.json")) if "unlearning_step_s" in read_json(p)]
    try:
        out = build(paths, args.out, step_costs, root=ROOT, robust_paths=sorted(results.glob("robust-*.json")),
                    scale_paths={"memory": results / "scale_memory.json", "steps": results / "scale_step.json",
                                 "chain": results / "scale_memory_base.json"})
        targets = write_targets(results, args.out.parent / "targets.json", ROOT)
        write_summary(args.readme, read_json(targets))   # the README's summary is made from targets.json
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}, {targets} and the results summary of {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
