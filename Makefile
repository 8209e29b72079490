# Two entry points a newcomer needs: `make demo` and `make test`. Both create (or reuse) .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo walkthrough test lint bench proto docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@# An editable install carries no data files: enable the server extension as a wheel install does.
	mkdir -p $(VENV)/etc/jupyter/jupyter_server_config.d
	cp jupyter-config/jupyter_server_config.d/mef3lab.json $(VENV)/etc/jupyter/jupyter_server_config.d/
	touch $@

# The demo recording, then JupyterLab on notebooks/ (prints the URL to open; Ctrl-C stops it).
demo: $(VENV)/.installed
	$(PY) -m mef3lab demo $(ARGS)

# The terminal walkthrough: a server on the demo recording, read cold, warm and prefetched.
walkthrough: $(VENV)/.installed
	$(PY) -m mef3lab walkthrough $(ARGS)

# Lint and format checks first (fast), then the whole suite.
test: lint
	$(PY) -m pytest $(ARGS)

# `ruff check` and `ruff format --check` (make test runs them first).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(VENV)/.installed
	$(PY) -m benchmarks $(ARGS)

proto: $(VENV)/.installed
	$(PY) proto/generate.py

# The HTML site (the README, docs/*.md and the API reference) in docs/_build/html; warnings fail it.
docs: $(VENV)/.installed
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache docs/_build
