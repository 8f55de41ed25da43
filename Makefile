# Two commands do all set-up on a fresh machine (Python 3.11+):
#   make serve   the MCP server on stdio (embedded PostgreSQL when DATABASE_URL is unset)
#   make test    the test suite, against a real PostgreSQL
PYTHON ?= python3
VENV ?= .venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[test]"
	touch $@

.PHONY: serve test bench
serve: $(VENV)/.installed
	$(VENV)/bin/schema-architect serve $(ARGS)

test: $(VENV)/.installed
	$(VENV)/bin/pytest -q $(ARGS)

bench: $(VENV)/.installed
	for b in bench/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done
