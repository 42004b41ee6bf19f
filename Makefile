# Observatory: `make up` runs the stack, `make test` runs the tests. Both set up what they need.
#
# The virtualenv lives in a cache keyed by the dependency list (pyproject.toml), so chDB (~0.5 GB)
# is installed once per dependency change, not once per checkout; .venv links to it.

PYTHON ?= python3
CACHE_DIR ?= $(HOME)/.cache/observatory
DEPS_HASH := $(shell sha256sum pyproject.toml | cut -c1-16)
VENV_DIR := $(CACHE_DIR)/venv-$(DEPS_HASH)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV_DIR)/.installed

.PHONY: up down test lint typecheck bench venv peers clean

$(STAMP): pyproject.toml
	@mkdir -p $(CACHE_DIR)
	@test -x $(VENV_DIR)/bin/python || $(PYTHON) -m venv $(VENV_DIR)
	$(VENV_DIR)/bin/pip install --quiet --upgrade pip
	$(VENV_DIR)/bin/pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)
	@if [ ! -L $(VENV) ] || [ "$$(readlink $(VENV))" != "$(VENV_DIR)" ]; then rm -rf $(VENV); ln -s $(VENV_DIR) $(VENV); fi
	@# The venv may be shared by several checkouts: point the editable install at this one.
	@$(BIN)/python -c "import collector, pathlib, sys; sys.exit(pathlib.Path(collector.__file__).resolve().parent.parent != pathlib.Path.cwd().resolve())" 2>/dev/null \
		|| $(BIN)/pip install --quiet --no-deps -e .
	@# The C span flattener and line protocol scanner, rebuilt when their sources change (optional: Python takes over).
	@$(BIN)/python setup.py --quiet build_ext --inplace 2>/dev/null || echo "note: C extensions not built; using the Python paths"

# The demo with its load generator running, so there is something to look at; `make up LOAD=` without.
LOAD ?= --load
up: venv
	$(BIN)/obs up $(LOAD)

test: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy

bench: venv
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
