# tunetrace: the two commands of the README are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch==2.13.0: on a machine with a local CPU wheel (pip find-links) pip takes it; on a GPU
# machine PyPI's default Linux build, which is CUDA. Installing torch first, then everything
# under constraints.txt, stops any other package from pulling a second (CUDA) torch.
TORCH_SPEC ?= torch==2.13.0
SNAKEMAKE_ARGS ?=
BENCH_ARGS ?=

.PHONY: setup demo test test-fast lint bench clean deepspeed deepspeed-install

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel setuptools
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(MAKE) --no-print-directory deepspeed-install
	@$(BIN)/python -c "import torch; print('torch', torch.__version__, 'cuda' if torch.cuda.is_available() else 'cpu')"
	touch $@

demo: setup
	$(BIN)/snakemake results/comparison.json $(SNAKEMAKE_ARGS)
	@echo "wrote results/comparison.json and results/comparison.md"

test: setup
	$(BIN)/python -m pytest -q --durations=30

test-fast: setup
	$(BIN)/python -m pytest -q -m "not workflow"

lint: setup
	$(BIN)/ruff check pkg tests workflow_scripts bench envs
	$(BIN)/ruff format --check pkg tests workflow_scripts bench envs
	$(BIN)/snakemake --lint

# The quick benchmarks (each in a snapshot of HEAD; ~20 min on the idle 2-core CPU) rewrite BENCHMARKS.md.
bench: setup
	$(BIN)/python bench/make_bench.py $(BENCH_ARGS)

# DeepSpeed (part of setup) builds against the installed torch: without build isolation, and under
# constraints.txt (torch==2.13.0), it cannot pull another, CUDA, torch. Its ops compile on first use
# (JIT, needs a C++ compiler); on a machine without CUDA it runs on its CPU accelerator over gloo.
deepspeed: setup

deepspeed-install:
	$(BIN)/python -m pip install --quiet --no-build-isolation -c constraints.txt deepspeed
	@$(BIN)/python -c "import importlib.metadata as m, torch; assert torch.__version__.startswith('2.13.0'), \
	  torch.__version__; print('deepspeed', m.version('deepspeed'), 'with torch', torch.__version__)"

clean:
	rm -rf results logs benchmarks .snakemake
