# The two commands (see README.md):
#   make book   build the whole website into _build/html (installs what it needs, runs every chapter)
#   make test   lint (ruff, mypy), unit tests, every notebook under nbval, and a warnings-as-errors book build
#   make test-fast   lint and the unit tests without the slow ones (day-to-day work; not a substitute for make test)
#
# Both create .venv with the Python below and install the pinned versions of constraints.txt.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_ARGS ?=
# Data: a local mirror of the data sets (a folder with omniglot/ and mnist/ inside). CI and the
# developers' machines have one beside the checkout; readers download from the official sources.
COMPANION_DATA_MIRROR ?= $(if $(wildcard ../shared/data/omniglot),$(abspath ../shared/data),)
export COMPANION_DATA_MIRROR
export PYTHONHASHSEED := 0

.PHONY: book test test-fast install lint unit unit-fast notebooks book-check strip lock clean help

help:
	@echo "make book    - build the website into _build/html (executes every chapter)"
	@echo "make test    - ruff + mypy, unit tests, nbval over book/, warnings-as-errors book build"
	@echo "make test-fast - ruff + mypy and the unit tests not marked slow (day-to-day work)"
	@echo "make strip   - remove outputs from the notebooks in book/ (before committing)"
	@echo "make lock    - regenerate constraints.txt from the current .venv"

install: $(STAMP)

$(STAMP): pyproject.toml setup.py constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 needed (3.11 tested)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(PIP_ARGS) \
		-c constraints.txt -e ".[book,test]"
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build .
	$(BIN)/python tools/check_site.py _build/html --executed

test: lint unit notebooks book-check

test-fast: lint unit-fast

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests -p no:cacheprovider --durations=15

unit-fast: $(STAMP)
	$(BIN)/python -m pytest tests -m "not slow" -p no:cacheprovider --durations=10

notebooks: $(STAMP)
	$(BIN)/python -m pytest book --nbval-lax --nbval-current-env -p no:cacheprovider --durations=10

book-check: $(STAMP)
	rm -rf _build
	$(BIN)/python tools/book_config.py _build/config/_config.yml
	$(BIN)/jupyter-book build . --config _build/config/_config.yml -W --keep-going
	$(BIN)/python tools/check_site.py _build/html

strip: $(STAMP)
	$(BIN)/python tools/strip_notebooks.py book

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check \
		| sed -E 's/^torch==([0-9.]+)\+cpu$$/torch==\1/' > constraints.txt

clean:
	rm -rf _build $(VENV)
