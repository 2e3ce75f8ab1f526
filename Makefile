# The two commands of the README:
#   make book   install, execute every notebook at smoke scale, render book/_build/html
#   make test   install, lint (ruff), unit tests, nbval on every notebook, pair check, strict book build
# Everything runs inside .venv, created on first use from the python3 on PATH (3.10-3.12).

PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
JOBS     ?= 2
NOTEBOOKS := $(shell find notebooks -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' | sort)
JB_ARGS  := --config book/_config.yml --toc book/_toc.yml

# Notebooks and tests on the 2-core CI machines: plain progress lines, the venv's kernel first.
export THESISLIB_PROGRESS ?= log
export JUPYTER_PREFER_ENV_PATH := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: install book test lint unit nbval pairs book-check sync lab clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v <= (3, 12) else "Python 3.10-3.12 is required, found %d.%d" % v)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[book,test]"
	touch $(STAMP)

book: install
	$(BIN)/thesislib book-pages --book-dir book
	$(BIN)/jupyter-book build . $(JB_ARGS) --path-output book
	@echo "open book/_build/html/index.html"

test: lint unit nbval pairs book-check

lint: install
	$(BIN)/ruff check .

unit: install
	$(BIN)/python -m pytest tests -n $(JOBS) -q -p no:cacheprovider

# Each notebook runs on one torch thread in its own kernel; --dist loadfile keeps a notebook's cells on one
# worker, so $(JOBS) notebooks execute side by side.
nbval: install
	THESISLIB_PROGRESS=none $(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider \
		-n $(JOBS) --dist loadfile -o testpaths= -o addopts= $(NOTEBOOKS)

pairs: install
	$(BIN)/thesislib notebooks --check

# Structure only: notebooks are not executed (nbval did that), every warning is an error.
book-check: install
	$(BIN)/thesislib book-pages --book-dir book
	$(BIN)/thesislib book-config --no-execute --output book/_build/check/_config.yml
	$(BIN)/jupyter-book build . --config book/_build/check/_config.yml --toc book/_toc.yml \
		--path-output book/_build/check -W -n --keep-going

sync: install
	$(BIN)/thesislib notebooks --sync

lab: install
	$(BIN)/python -c 'import jupyterlab' 2>/dev/null || $(BIN)/python -m pip install -e ".[lab]"
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf book/_build book/_generated
