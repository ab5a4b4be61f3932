"""Which proxy retain set protects the retain set (issue 10 item 7): `ours` without the real retain images. (The
logic, the config's keys and the steps: src/i2i_unlearn/bench/proxy_benchmark.py.)

    .venv/bin/python benchmarks/proxy.py --config benchmarks/proxy-mae.yaml

Writes benchmarks/results/<name>.json and .md; every unlearned model and every scoring is cached in --work (default
runs/<name>), so a killed benchmark restarts where it stopped.

Expected time on 2 CPU cores for proxy-mae.yaml: 8 unlearnings (5 proxies, 3 sizes) of 1500 steps at ~4 min each
(~32 min; the proxies of the model's own outputs add ~10 s of generation each for the MAE, loading Fashion-MNIST
~10 s), one validation scoring of the original and the 5 proxy runs (~3 min), one of the 3 size runs (~2 min) and
one test scoring of 3 models (~3 min): about 40 minutes, well under an hour.
"""
from __future__ import annotations

import functools

from i2i_unlearn.bench.proxy_benchmark import markdown, proxy_benchmark

from _shared import ROOT, config_benchmark


def run(config, work, results, command) -> dict:
    record = proxy_benchmark(config, work, results, root=ROOT, command=command,
                             echo=functools.partial(print, flush=True))
    print(markdown(record))
    return record


if __name__ == "__main__":
    config_benchmark(__doc__, run, "benchmarks/proxy-mae.yaml")
