# segment-sync: every target installs what it needs from nothing (python3 >= 3.11 on PATH).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test docs lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# The main job on the embedded defaults: stand-ins, seeded SQLite store, DuckDB logs, dagster dev.
run: install
	$(BIN)/segment-sync demo run

# The documentation site in strict mode (a broken link or anchor fails), built into a temp folder.
docs: install
	@site=$$(mktemp -d) && trap 'rm -rf "$$site"' EXIT && \
		NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir "$$site"

# The whole test suite; starts this machine's PostgreSQL if it is installed but not running.
test: install docs
	bash scripts/ensure_postgres.sh
	bash scripts/ensure_redis.sh
	$(BIN)/ruff check segment_sync segment_sync_tests bench
	$(BIN)/ruff format --check segment_sync segment_sync_tests bench
	$(BIN)/pytest -n 2 --dist loadfile -p no:cacheprovider

lint: install
	$(BIN)/ruff check segment_sync segment_sync_tests bench

format: install
	$(BIN)/ruff format segment_sync segment_sync_tests bench

# Every benchmark runs even when one misses its target; the target fails if any did.
bench: install
	@rc=0; for b in outbound freshness follow_runs inbound logs log_write receiver_edge cli_start s3_requests routing; do \
		$(BIN)/python bench/$$b.py || rc=1; done; exit $$rc

clean:
	rm -rf $(VENV) data/*.db data/logs data/dagster .pytest_cache
