# Every target sets itself up on a fresh machine: a .venv with the CPU build of torch first
# (so nothing pulls a multi-GB CUDA build), then the project with pinned versions, then the
# Animal-MNIST data package without its declared dependencies (they pull tensorflow).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo demo-diffusion demo-vqgan bench clean

FAMILY ?= mae
BENCH ?= mae vqgan diffusion mae-fashion

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps animal-mnist==0.4
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/i2i-unlearn demo --family $(FAMILY)

demo-diffusion: $(STAMP)
	$(BIN)/i2i-unlearn demo --family diffusion

demo-vqgan: $(STAMP)
	$(BIN)/i2i-unlearn demo --family vqgan

# The side-by-side benchmark: every family's benchmarks/bench-<family>.yaml and the MAE on Fashion-MNIST
# (bench-mae-fashion.yaml), or `make bench BENCH=mae` for one
# (hours on 2 cores: size it first with `i2i-unlearn bench --config ... --dry-run`). Killed, it restarts where it
# stopped; then docs/results.md.
# The proxy cells read Debian's Fashion-MNIST: `apt-get install dataset-fashion-mnist` (checked before any run).
bench: $(STAMP)
	for name in $(BENCH); do $(BIN)/i2i-unlearn bench --config benchmarks/bench-$$name.yaml || exit 1; done
	$(BIN)/python benchmarks/make_results_page.py

clean:
	rm -rf $(VENV) runs
