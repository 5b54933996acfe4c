# ha_pipeline: `make demo` and `make test` are the two commands; the rest are their steps.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PYTEST_ARGS ?=

.PHONY: venv system-deps ha-venv test screenshot demo ui clean

## venv: project venv .venv with ha_pipeline (editable) and the test extras
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	@start=$$(date +%s); \
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV); \
	$(VENV)/bin/pip install --quiet -e '.[test]' && \
	echo "venv: installed ha_pipeline[test] into $(VENV) in $$(( $$(date +%s) - start )) s"
	@touch $@

## system-deps: Debian influxdb, postgresql, chromium (apt-get, only what is missing)
system-deps:
	@bash scripts/system_deps.sh

## ha-venv: .ha-venv with homeassistant==2024.1.6 and the test config's requirements
ha-venv:
	@bash scripts/install_ha.sh

## test: everything the tests need, then the whole test suite
test: venv system-deps ha-venv
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## screenshot: refresh docs/asset-graph.png from the UI test (a plain test run leaves docs/ alone)
screenshot: venv system-deps ha-venv
	HA_PIPELINE_REFRESH_SCREENSHOT=1 $(VENV)/bin/pytest ha_pipeline_tests/integration/test_ui.py -k screenshot

## demo: simulated home + local InfluxDB, run the jobs, print a summary
demo: venv system-deps
	@bash scripts/demo.sh

## ui: the demo's servers and environment, then the Dagster UI on http://127.0.0.1:3000
ui: venv system-deps
	@bash scripts/ui.sh

## clean: stop the demo InfluxDB, remove venvs, local data and test output
clean:
	-@bash scripts/influxdb.sh stop
	rm -rf $(VENV) .ha-venv .data .dagster_home test-logs .pytest_cache .hypothesis *.egg-info
