# Every target sets itself up on a fresh machine: a .venv with the CPU build of torch first
# (so nothing pulls a multi-GB CUDA build), then the project with pinned versions, then the
# Animal-MNIST data package without its declared dependencies (they pull tensorflow).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo demo-diffusion demo-vqgan bench fashion-mnist clean

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
# The proxy cells and the Fashion-MNIST bench read Debian's Fashion-MNIST (the fashion-mnist target installs it).
bench: $(STAMP) fashion-mnist
	for name in $(BENCH); do $(BIN)/i2i-unlearn bench --config benchmarks/bench-$$name.yaml || exit 1; done
	$(BIN)/python benchmarks/make_results_page.py

# Debian's dataset-fashion-mnist (70,000 images, MIT): the proxy retain set and the second dataset. The bench and
# the reference trainings need it; the tests do not (they write their own IDX files, and the few that read the
# real package skip, saying so in pytest's summary). Installs with apt-get as root; otherwise says what to run.
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist
fashion-mnist:
	@if [ -d $(FASHION_MNIST_DIR) ]; then exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's dataset-fashion-mnist"; \
		apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }; \
	else \
		echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist'," \
		     "or pass --proxy-root/--data-root a folder of its IDX files"; exit 1; \
	fi

clean:
	rm -rf $(VENV) runs
