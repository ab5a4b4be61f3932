"""Does a method remove the class or hide it? Every method of a family against LiRA, relearning against the retrained
band, the tell with its floor, retain quality and cost (issue 33; the logic: src/i2i_unlearn/bench/robust.py).

    .venv/bin/python benchmarks/robust.py --config benchmarks/robust-mae.yaml

Every model and audit is cached in --work (default runs/<name>): a killed run starts again where it stopped.
Writes benchmarks/results/<name>.json and .md, and the audits beside them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from i2i_unlearn.bench.robust import robust_benchmark
from i2i_unlearn.errors import UserError

from _shared import ROOT, command_line


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="robustness config, e.g. benchmarks/robust-mae.yaml")
    parser.add_argument("--work", default=None, help="folder for the models and audits (default runs/<name>)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"), help="where <name>.json/.md go")
    args = parser.parse_args(argv)
    work = Path(args.work) if args.work else ROOT / "runs" / Path(args.config).stem
    record = robust_benchmark(Path(args.config), work, Path(args.results), root=ROOT,
                              command=command_line(__file__, argv))
    print((Path(args.results) / f"{record['name']}.md").read_text())
    return record


if __name__ == "__main__":
    try:
        main()
    except UserError as error:
        sys.exit(f"error: {error}")
