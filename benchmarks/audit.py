"""The audit of a shipped model's unlearning (issue 11): does the forgetting survive an attacker? (The logic and
what it audits: src/i2i_unlearn/bench/audit_benchmark.py.)

    .venv/bin/python benchmarks/audit.py --config benchmarks/audit-mae.yaml

Every model and audit is cached in --work (default runs/<name>): a killed run starts again where it stopped.
Writes benchmarks/results/<name>.json (the audits' numbers, the commands, the inputs' hashes) and .md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from i2i_unlearn.bench.audit_benchmark import audit_benchmark, markdown
from i2i_unlearn.errors import UserError

from _shared import ROOT, command_line


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="audit config, e.g. benchmarks/audit-mae.yaml")
    parser.add_argument("--work", default=None, help="folder for the models and audits (default runs/<name>)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"), help="where <name>.json/.md go")
    args = parser.parse_args(argv)
    work = Path(args.work) if args.work else ROOT / "runs" / Path(args.config).stem
    record = audit_benchmark(Path(args.config), work, Path(args.results), root=ROOT,
                             command=command_line(__file__, argv))
    print(markdown(record))
    return record


if __name__ == "__main__":
    try:
        main()
    except UserError as error:
        sys.exit(f"error: {error}")
