# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv and install geocorr into it; torch is pinned to the CPU wheel.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= demo_out

.PHONY: install demo test test-slow lint bench clean browser

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,models,ray]"
	touch $@

demo: install
	rm -rf $(OUT) && $(VENV)/bin/geocorr demo --out $(OUT)

# the viewer's browser test (tests/test_viewer_browser.py) needs Debian's chromium: installed
# here when absent (as root, with apt-get); GEOCORR_REQUIRE_BROWSER=1 makes that test fail,
# not skip, when chromium is still missing
test: install browser
	$(PY) -m ruff check src tests benchmarks
	GEOCORR_REQUIRE_BROWSER=1 $(PY) -m pytest -q

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
	    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	  else echo "chromium not found: install it (apt-get install -y chromium) for the viewer's browser test"; fi; }

test-slow: install browser
	GEOCORR_REQUIRE_BROWSER=1 $(PY) -m pytest -q -m slow

bench: install
	$(PY) benchmarks/geometry.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
