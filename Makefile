# Two commands: `make lab` (install everything, launch JupyterLab on the notebooks) and
# `make test` (install everything, run the whole test suite). Both create .venv on first use.
# Installing also compiles the numba kernels into their disk cache (`python -m explorer compile`),
# so a fresh clone's first flows figure does not wait for numba.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LAB_ARGS ?=
PYTEST_ARGS ?=

.PHONY: lab test install bench clean

lab: $(STAMP)
	$(PY) -m explorer lab $(LAB_ARGS)

test: $(STAMP)
	$(PY) -m ruff check explorer tests benchmarks scripts notebooks
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(STAMP)

bench: $(STAMP)
	$(PY) -m explorer bench

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -c constraints.txt -e ".[test]"
	# plotly's widget JavaScript as a static file that JupyterLab and Voila serve (cacheable)
	$(PY) -m explorer.ui.plotly_widget
	$(PY) -m explorer compile
	# explorer's offline Voila template and the config that selects it: data files of the package
	# (pyproject), which an editable install does not copy; linked so that edits show at once
	mkdir -p $(VENV)/share/jupyter/voila/templates $(VENV)/etc/jupyter/jupyter_server_config.d \
		$(VENV)/etc/ipython
	ln -sfn $(CURDIR)/share/jupyter/voila/templates/explorer $(VENV)/share/jupyter/voila/templates/explorer
	ln -sf $(CURDIR)/jupyter-config/voila.json $(VENV)/etc/jupyter/voila.json
	ln -sf $(CURDIR)/jupyter-config/jupyter_server_config.d/explorer-voila.json \
		$(VENV)/etc/jupyter/jupyter_server_config.d/explorer-voila.json
	# kernels import their notebook's modules while they wait for the first cell (explorer/warm.py)
	ln -sf $(CURDIR)/ipython-config/ipython_kernel_config.py $(VENV)/etc/ipython/ipython_kernel_config.py
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
