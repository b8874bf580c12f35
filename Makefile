# Two commands matter: `make run` and `make test`. Both set up what they need.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PORT    ?= 8501
HOST    ?= 127.0.0.1
SRC     := $(wildcard comms pages tests bench app.py)

.PHONY: run test lint format bench install chromium dovecot clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# Playwright cannot download its own browsers here: use Debian's chromium.
chromium:
	@command -v /usr/bin/chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# The IMAP tests (tests/test_feedback_imap.py) start a dovecot of their own on a free
# port of 127.0.0.1, with the throwaway user and configuration in tests/dovecot/.
dovecot:
	@command -v /usr/sbin/dovecot >/dev/null 2>&1 || { \
	  echo "installing Debian dovecot-imapd for the IMAP tests"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends dovecot-imapd; }

# The app with its routes (unsubscribe links, Twilio callbacks) and background sender.
run: install
	$(BIN)/python -m comms init
	$(BIN)/python -m comms serve --port $(PORT) --host $(HOST)

test: install chromium dovecot
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)

format: install
	$(BIN)/ruff format $(SRC)
	$(BIN)/ruff check --fix $(SRC)

bench: install
	$(BIN)/pip install -q -e '.[dev,bench]'
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) data/comms.duckdb data/comms.duckdb.wal data/outbox
