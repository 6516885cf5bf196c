# The two commands (see README.md):
#   make book   build the whole website into _build/html (installs what it needs, runs every chapter)
#   make test   lint (ruff, mypy), unit tests, every notebook under nbval, a warnings-as-errors book build
#               of the chapters nbval executed, and browser tests of that site (tests/site/)
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
# The reproduction appendix's table, generated from results/*.json before every site build
APPENDIX := _build/generated/reproduction.md
# nbval stores the chapters it executed here (tools/nbval_cache.py); the test build reads them
NB_CACHE := _build/.jupyter_cache
# Full-page screenshots of every page from the browser tests (outside the repository)
COMPANION_SCREENSHOT_DIR ?= $(or $(TMPDIR),/tmp)/site-screenshots
export COMPANION_SCREENSHOT_DIR

.PHONY: book test test-fast install lint unit unit-fast notebooks book-check site-test browser \
	appendix strip lock clean help

help:
	@echo "make book    - build the website into _build/html (executes every chapter)"
	@echo "make test    - ruff + mypy, unit tests, nbval over book/, warnings-as-errors book build,"
	@echo "               browser tests of the built site (tests/site/, needs chromium)"
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

appendix: $(STAMP)
	$(BIN)/python tools/reproduction_table.py $(APPENDIX)

book: $(STAMP) appendix
	$(BIN)/jupyter-book build .
	$(BIN)/python tools/check_site.py _build/html --executed

test: lint unit notebooks book-check site-test

test-fast: lint unit-fast

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests -p no:cacheprovider --durations=15

unit-fast: $(STAMP)
	$(BIN)/python -m pytest tests -m "not slow" -p no:cacheprovider --durations=10

notebooks: $(STAMP)
	COMPANION_NBVAL_CACHE=$(NB_CACHE) $(BIN)/python -m pytest book --nbval-lax \
		--nbval-current-env -p tools.nbval_cache -p no:cacheprovider --durations=10

# Renders the outputs nbval just produced (from $(NB_CACHE)); a chapter missing there is executed.
book-check: $(STAMP)
	mkdir -p _build
	find _build -mindepth 1 -maxdepth 1 ! -name .jupyter_cache -exec rm -rf {} +
	$(BIN)/python tools/reproduction_table.py $(APPENDIX)
	$(BIN)/python tools/book_config.py _build/config/_config.yml
	$(BIN)/jupyter-book build . --config _build/config/_config.yml -W --keep-going
	$(BIN)/python tools/check_site.py _build/html --executed

# The site book-check built, in Chromium through Playwright (about a minute).
site-test: $(STAMP) browser
	COMPANION_SITE_EXECUTED=1 $(BIN)/python -m pytest tests/site -p no:cacheprovider --durations=5

# CI runs as root on Debian: install Chromium when missing. Elsewhere, say how to get one (the
# browser tests then skip, except in CI where they fail).
browser:
	@if [ -z "$$COMPANION_CHROMIUM" ] && ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing the Debian package chromium for the browser tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else \
			echo "no chromium on PATH: install it (Debian/Ubuntu: apt-get install chromium) or set" \
			     "COMPANION_CHROMIUM=/path/to/chrome"; \
		fi; \
	fi

strip: $(STAMP)
	$(BIN)/python tools/strip_notebooks.py book

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check \
		| sed -E 's/^torch==([0-9.]+)\+cpu$$/torch==\1/' > constraints.txt

clean:
	rm -rf _build $(VENV)
