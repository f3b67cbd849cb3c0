# Simpul: two commands do everything — `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests create (and remove) their own vhost, users and database on these servers.
TEST_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: tls run up down status provision backup restore test unit integration e2e lint typecheck importlint check docs browser assets jemalloc clean clean-sandboxes

$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

## make run: install, provision broker and database, start the four services, feed a simulated day.
run: $(STAMP) assets jemalloc
	$(BIN)/python -m deploy.local run $(SIM_ARGS)

## make up / make down: the suite in the background (pids and logs under .run/).
up: $(STAMP) assets jemalloc
	$(BIN)/python -m deploy.local up

down: $(STAMP)
	$(BIN)/python -m deploy.local down

status: $(STAMP)
	$(BIN)/python -m deploy.local status

provision: $(STAMP)
	$(BIN)/python -m deploy.local provision

## make backup DIR=path / make restore DIR=path: the database, the broker's definitions, credentials and the
## gallery key (restore: into an empty database server and broker; see deploy/backup.py).
backup: $(STAMP)
	@test -n "$(DIR)" || { echo "usage: make backup DIR=/path/to/new/folder"; exit 2; }
	$(BIN)/python -m deploy.backup create "$(DIR)"

restore: $(STAMP)
	@test -n "$(DIR)" || { echo "usage: make restore DIR=/path/to/backup"; exit 2; }
	$(BIN)/python -m deploy.backup restore "$(DIR)"

## make tls DIR=path: a local CA and the broker's certificate (deploy/tls.py), for AMQPS.
tls: $(STAMP)
	@test -n "$(DIR)" || { echo "usage: make tls DIR=/path/to/new/folder"; exit 2; }
	$(BIN)/python -m deploy.tls create "$(DIR)"

## make test: static checks, then unit, integration and e2e tests (real RabbitMQ, PostgreSQL, Chromium).
test: check browser assets jemalloc
	AMQP_URL=$(TEST_AMQP_URL) DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest -q -p no:cacheprovider tests

unit: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider tests/unit

integration: $(STAMP)
	AMQP_URL=$(TEST_AMQP_URL) DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest -q -p no:cacheprovider tests/integration

e2e: $(STAMP) browser assets
	AMQP_URL=$(TEST_AMQP_URL) DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest -q -p no:cacheprovider tests/e2e

check: lint typecheck importlint

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy shared services sim bench deploy tests

importlint: $(STAMP)
	$(BIN)/lint-imports --no-cache

## A Debian package, with the package lists refreshed only when the install needs it.
apt_install = DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1) >/dev/null || \
  (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1) >/dev/null)

## The monitor is tested in Debian's Chromium, installed here (never a browser download at test time).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then $(call apt_install,chromium); \
	  else echo "Chromium is missing: install it with 'sudo apt-get install chromium'"; exit 1; fi; \
	fi

## The services' memory allocator (shared/allocator.py), from Debian; without it they run on CPython's own and
## say so in their first log line.
jemalloc:
	@if ! ldconfig -p 2>/dev/null | grep -q libjemalloc.so.2; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then $(call apt_install,libjemalloc2); \
	  else echo "jemalloc is missing (the services run on CPython's allocator): 'sudo apt-get install libjemalloc2'"; fi; \
	fi

## The monitor's browser libraries (Chart.js), from npm at the exact versions of its package.json, served by the
## monitor itself (no CDN, nothing copied into the repository, no lock file recording a registry).
ASSETS := services/monitor/assets
$(ASSETS)/node_modules/.installed: $(ASSETS)/package.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js (e.g. 'sudo apt-get install npm')"; exit 1; }
	npm install --prefix $(ASSETS) --no-package-lock --no-audit --no-fund --silent
	@touch $@

assets: $(ASSETS)/node_modules/.installed

## make docs: AsyncAPI documents of the four services and the error-code catalogue.
docs: $(STAMP)
	$(BIN)/python -m deploy.docs

clean-sandboxes: $(STAMP)
	$(BIN)/python -m deploy.strays

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache build *.egg-info $(ASSETS)/node_modules
