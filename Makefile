# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv and install geocorr into it; torch is pinned to the CPU wheel.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= demo_out

.PHONY: install demo test test-slow lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,models,ray]"
	touch $@

demo: install
	rm -rf $(OUT) && $(VENV)/bin/geocorr demo --out $(OUT)

test: install
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

bench: install
	$(PY) benchmarks/geometry.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
