# The three commands of the README: `make demo`, `make test` and `make app`. Each starts from nothing but python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test app lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

# The example platform application on http://127.0.0.1:8000, two workers on $HUTCH_URL (./data).
app: $(STAMP)
	$(BIN)/python -m uvicorn --app-dir examples platform_app.main:app --host 127.0.0.1 --port 8000 --workers 2 \
		--timeout-graceful-shutdown 10

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow the editable install's folder mapping (core/ -> hutch, backends/ ->
# hutch.backends, ...), so it checks a tree of links laid out as the import names are.
typecheck: $(STAMP)
	rm -rf build/typecheck && mkdir -p build/typecheck/hutch
	for f in core/*.py core/py.typed; do ln -s ../../../$$f build/typecheck/hutch/; done
	for d in backends plugins contrib; do ln -s ../../../$$d build/typecheck/hutch/$$d; done
	ln -s ../../../core/testing build/typecheck/hutch/testing
	$(BIN)/mypy build/typecheck/hutch tests bench examples

bench: $(STAMP)
	$(BIN)/python bench/core.py
	$(BIN)/python bench/backends.py
	$(BIN)/python bench/models.py
	$(BIN)/python bench/plugins.py
	$(BIN)/python bench/workers.py
	$(BIN)/python bench/postgres.py
	$(BIN)/python bench/import_sql.py
	$(BIN)/python bench/backup.py
	$(BIN)/python bench/app.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache data app.db app.db-wal app.db-shm
