"""The audit of a shipped model's unlearning (issue 11): does the forgetting survive an attacker? (The logic and
what it audits: src/i2i_unlearn/bench/audit_benchmark.py.)

    .venv/bin/python benchmarks/audit.py --config benchmarks/audit-mae.yaml

Every model and audit is cached in --work (default runs/<name>): a killed run starts again where it stopped.
Writes benchmarks/results/<name>.json (the audits' numbers, the commands, the inputs' hashes) and .md.
"""
from __future__ import annotations

from i2i_unlearn.bench.audit_benchmark import audit_benchmark, markdown

from _shared import ROOT, config_benchmark


def run(config, work, results, command) -> dict:
    record = audit_benchmark(config, work, results, root=ROOT, command=command)
    print(markdown(record))
    return record


if __name__ == "__main__":
    config_benchmark(__doc__, run, "benchmarks/audit-mae.yaml")
