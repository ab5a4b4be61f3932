"""Does a method remove the class or hide it? Every method of a family against LiRA, relearning against the retrained
band, the tell with its floor, retain quality and cost (issue 33; the logic: src/i2i_unlearn/bench/robust.py).

    .venv/bin/python benchmarks/robust.py --config benchmarks/robust-mae.yaml
    .venv/bin/python benchmarks/robust.py --config benchmarks/robust-mae-files.yaml   # a file request

A file request (`files:`) trains its retrained models itself, one full training per retrain seed (its config's
header says how long). Every model and audit is cached in --work (default runs/<name>): a killed run starts again
where it stopped.
Writes benchmarks/results/<name>.json and .md, and the audits beside them.
"""
from __future__ import annotations

from i2i_unlearn.bench.robust import robust_benchmark

from _shared import ROOT, config_benchmark


def run(config, work, results, command) -> dict:
    record = robust_benchmark(config, work, results, root=ROOT, command=command)
    print((results / f"{record['name']}.md").read_text())
    return record


if __name__ == "__main__":
    config_benchmark(__doc__, run, "benchmarks/robust-mae.yaml")
