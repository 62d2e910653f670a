# Developer entry points. `make run` starts the whole stack (embedded PostgreSQL and
# Redis when DATABASE_URL / REDIS_URL are unset); `make check` (lint, secret scan,
# dependency audit, alembic check, alert rules, then `make test`) is what CI runs (see
# .ci/run).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv .venv run test lint fmt migrate clean reset-dev-data bench

venv .venv: $(STAMP)

# Re-installs whenever pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m helpdesk.devrun

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Scale benchmark (not CI; needs PostgreSQL, Redis and wrk): gunicorn + worker + cron driven
# by wrk on generated data. `make bench N=100000` for one size, `make bench SCALE=10k,100k,1m`
# for several and the growth between them. See docs/performance.md.
SCALE ?= 10k,100k
bench: $(STAMP)
	$(BIN)/python -m bench.run $(if $(N),--tickets $(N),--scale $(SCALE)) $(BENCH_ARGS)

migrate: $(STAMP)
	$(BIN)/python -m alembic upgrade head

clean:
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info

# Deletes local dev data: embedded PostgreSQL/Redis data, secret key, demo password.
reset-dev-data:
	@if [ -f instance/pg/postmaster.pid ]; then \
		echo "instance/pg looks in use: stop 'make run' first" \
			"(or delete instance/pg/postmaster.pid if no server runs)"; exit 1; fi
	rm -rf instance

# Release checks (docs/decisions/0011-release-checks.md): what CI runs (.ci/run), in order,
# stopping at the first failing step. Each step is also a target of its own.
.PHONY: check secrets secrets-baseline sca migrations-check alerts-check smoke-e2e
ALERT_RULES := ops/alerts.yml
ALERT_TESTS := ops/alerts_test.yml

check: $(STAMP)
	@printf '\n==> check 1/6: lint (ruff check, ruff format --check, mypy)\n'
	@$(MAKE) --no-print-directory lint || { echo 'check FAILED at 1/6: lint'; exit 1; }
	@printf '\n==> check 2/6: secret scan (detect-secrets, tracked files vs .secrets.baseline)\n'
	@$(MAKE) --no-print-directory secrets || { echo 'check FAILED at 2/6: secret scan'; exit 1; }
	@printf '\n==> check 3/6: dependency audit (pip-audit on the installed environment)\n'
	@$(MAKE) --no-print-directory sca || { echo 'check FAILED at 3/6: dependency audit'; exit 1; }
	@printf '\n==> check 4/6: models and migrations agree (alembic check, scratch database)\n'
	@$(MAKE) --no-print-directory migrations-check \
		|| { echo 'check FAILED at 4/6: alembic check'; exit 1; }
	@printf '\n==> check 5/6: alert rules (promtool check rules, promtool test rules)\n'
	@$(MAKE) --no-print-directory alerts-check || { echo 'check FAILED at 5/6: alert rules'; exit 1; }
	@printf '\n==> check 6/6: the whole test suite (make test)\n'
	@$(MAKE) --no-print-directory test || { echo 'check FAILED at 6/6: tests'; exit 1; }
	@printf '\n==> check passed: all 6 steps\n'

secrets: $(STAMP)
	$(BIN)/python -m scripts.secret_scan

# After a new (fake) secret: refresh the baseline, then mark each new finding with
# `.venv/bin/detect-secrets audit .secrets.baseline` (false positive = not a real secret).
secrets-baseline: $(STAMP)
	$(BIN)/detect-secrets scan --baseline .secrets.baseline

sca: $(STAMP)
	$(BIN)/python -m scripts.sca

migrations-check: $(STAMP)
	$(BIN)/python -m scripts.migration_check

alerts-check:
	@command -v promtool >/dev/null || { echo 'promtool is missing: apt-get install prometheus' \
		'(Debian ships promtool in it; .ci/run installs it)'; exit 1; }
	@if [ ! -f $(ALERT_RULES) ]; then \
		echo '!!! ALERT RULES SKIPPED: $(ALERT_RULES) does not exist yet !!!'; exit 0; fi; \
	if [ ! -f $(ALERT_TESTS) ]; then \
		echo '$(ALERT_TESTS) is missing: every alert rule needs a promtool test'; exit 1; fi; \
	promtool check rules $(ALERT_RULES) && promtool test rules $(ALERT_TESTS)

# Browser smoke test of a deployment (docs/runbook.md): SMOKE_PASSWORD from the environment.
smoke-e2e: $(STAMP)
	$(BIN)/python -m scripts.smoke_e2e
