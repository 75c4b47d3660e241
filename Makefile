# Set-up is part of every target: a fresh clone needs only `make quickstart` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch first and pinned to what this kind of machine serves from local disk; pyproject keeps
# the open range (torch>=2.4) for everyone else.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
STORE  ?= ablate_store

.PHONY: install quickstart test test-fast lint bench example-store standins clean

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

# The real-server tests (marker `servers`) run too: the dev extra brings PostgreSQL's binaries,
# and ABLATE_REQUIRE_SERVERS turns a missing server into a failure instead of a skip.
test: install
	ABLATE_REQUIRE_SERVERS=1 $(PY) -m pytest -q --durations=15

# The edit loop: every test but those marked slow (training, worker processes, servers).
test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check ablate tests benchmarks scripts
	$(VENV)/bin/mypy

bench: install
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/report_scale.py
	$(PY) benchmarks/ui.py

# Synthetic stand-ins for the plants and satellite studies (see studies/README.md).
standins: install
	$(VENV)/bin/ablate data make plants build/standins/plants --overwrite
	$(VENV)/bin/ablate data make satellite build/standins/satellite --overwrite

# Re-create the committed example store from a real quickstart run.
example-store: install
	$(PY) scripts/make_example_store.py

clean:
	rm -rf $(STORE) reports .pytest_cache
