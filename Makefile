# zerofs: `make demo` and `make test` each set up everything they need on a
# fresh Debian 12 (Python 3.11): system packages, a virtualenv, the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint unit bench docs clean

# System packages: venv support for Debian's python3, the tools tests use, and what
# pyfuse3 builds against (it is compiled from source) and mounts with (fusermount3);
# attr and acl give the xattr tests setfattr, getfattr, setfacl and getfacl; rsync the hard-link tests rsync -aH.
$(VENV)/.system:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in python3-venv make man-db fuse3 libfuse3-dev pkg-config gcc python3-dev attr acl rsync; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	fi
	$(PYTHON) -m venv $(VENV)
	touch $@

$(STAMP): $(VENV)/.system pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' --config-settings editable_mode=compat
	touch $@

setup: $(STAMP)

demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

lint: setup
	$(BIN)/ruff check zerofs tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: setup
	$(BIN)/python -m pytest -n 2 -q

# The whole suite, as CI runs it (.ci/run runs exactly `make test`).
test: lint unit

bench: setup
	bash benchmarks/setup.sh
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/gc_bench.py
	$(BIN)/python benchmarks/mount_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
