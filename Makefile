# Two commands do all set-up on a fresh machine (Python 3.11+):
#   make serve   the MCP server on stdio (embedded PostgreSQL when DATABASE_URL is unset)
#   make test    the test suite, against a real PostgreSQL
PYTHON ?= python3
VENV ?= .venv

# Set-up output goes to stderr and make echoes nothing: on stdio, stdout belongs to the MCP protocol.
.SILENT:
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV) >&2
	$(VENV)/bin/pip install --quiet --upgrade pip >&2
	$(VENV)/bin/pip install --quiet -e ".[test]" >&2
	touch $@

.PHONY: serve test bench
serve: $(VENV)/.installed
	$(VENV)/bin/schema-architect serve $(ARGS)

test: $(VENV)/.installed
	$(VENV)/bin/pytest -q $(ARGS)

bench: $(VENV)/.installed
	for b in bench/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done
