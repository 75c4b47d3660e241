# Set-up is part of every target: a fresh clone needs only `make quickstart` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch first and pinned to what this kind of machine serves from local disk; pyproject keeps
# the open range (torch>=2.4) for everyone else.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
STORE  ?= ablate_store
# Let Python cache compiled modules in __pycache__ (ignored by git) even where the environment
# says not to (PYTHONDONTWRITEBYTECODE): every worker process and every fresh-process test
# would otherwise compile ablate/ again on start (about 1 s each on 2 cores).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install system quickstart test test-fast lint bench gpu-check example-store standins examples clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

quickstart: install
	$(VENV)/bin/ablate study run studies/quickstart.yaml --store $(STORE)
	$(VENV)/bin/ablate report quickstart --store $(STORE) --out reports/quickstart.md > /dev/null
	@echo "report:      reports/quickstart.md"
	@echo "MLflow runs: $(STORE)/mlflow.db (artifacts in $(STORE)/artifacts)"
	@echo "browse:      $(VENV)/bin/ablate ui --store $(STORE)   (http://127.0.0.1:5000)"

# The Debian packages the real-parts tests need (Chromium, Slurm, munge), installed when
# missing (as root; a no-op when present).
system:
	scripts/system_packages.sh

# The real-server tests run too: the dev extra brings PostgreSQL's binaries, `system` the
# browser and Slurm, and ABLATE_REQUIRE_SERVERS turns a missing one into a failure, not a skip.
# Two test processes (pytest-xdist), each test file on one of them (a file's servers and
# clusters start once), one torch thread each (tests/conftest.py).
test: install system
	ABLATE_REQUIRE_SERVERS=1 $(PY) -m pytest -q -n 2 --dist loadfile --durations=25

# The edit loop: every test but those marked slow (training, worker processes, servers).
test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check ablate tests benchmarks scripts
	$(VENV)/bin/mypy
	$(PY) -m ablate.spec.reference --check docs/spec.md

# Speed figures, each a ratio against a baseline measured in the same run, with the machine's
# core count and load (about 10 minutes on 2 idle cores). BENCH_RUNS=1000 skips the 10,000-run
# report; BENCH_EPOCHS (default: the quickstart's 6) / BENCH_REPEATS trade the overhead
# figure's precision for time.
BENCH_RUNS    ?= 1000,10000
BENCH_EPOCHS  ?=
BENCH_REPEATS ?= 3
bench: install
	@$(PY) -c "import os; print(f'cpus {os.cpu_count()}, load average', *(f'{v:.2f}' for v in os.getloadavg()))"
	$(PY) benchmarks/study_list.py --repeats 3
	$(PY) benchmarks/overhead.py $(if $(BENCH_EPOCHS),--epochs $(BENCH_EPOCHS)) --repeats $(BENCH_REPEATS) --retries 1
	$(PY) benchmarks/enqueue.py --repeats 1
	$(PY) benchmarks/report_scale.py --runs $(BENCH_RUNS) --repeats 3
	$(PY) benchmarks/data_pipeline.py
	$(PY) benchmarks/ui.py

# Every CUDA path in one command (at most 8 minutes on one H100-class GPU; docs/gpu.md):
# the `cuda` tests, a 2-worker study sharing GPU 0, the precisions against fp32, out-of-memory
# halving, resume after a kill, and the figures as one table. Without CUDA: one line, exit 0.
gpu-check: install
	$(PY) benchmarks/gpu_check.py

# Synthetic stand-ins for the plants and satellite studies (see studies/README.md).
standins: install
	$(VENV)/bin/ablate data make plants build/standins/plants --overwrite
	$(VENV)/bin/ablate data make satellite build/standins/satellite --overwrite

# The example gallery (docs/examples/): every ready study's cpu profile run on real data into a
# fresh store (build/examples/<study>), then its page, figures and HTML report. Long: see
# studies/README.md for each study's time; EXAMPLES="quickstart satellite_binary" runs some.
EXAMPLES ?=
examples: install
	$(PY) scripts/make_examples.py $(foreach s,$(EXAMPLES),--study $(s))

# Re-create the committed example store from a real quickstart run.
example-store: install
	$(PY) scripts/make_example_store.py

clean:
	rm -rf $(STORE) reports .pytest_cache
