# The entry points of README.md. Each sets up what it needs first, once: a stamp per
# Python records the last install, and pip runs again only when what it builds from
# changed (pyproject.toml, setup.py, ext/). Python sources need no reinstall (editable).
PY ?= python3
STAMPS := .make/$(shell $(PY) -c 'import sys; print(sys.prefix.strip("/").replace("/", "_"))')
BUILD_INPUTS := pyproject.toml setup.py $(wildcard ext/*.pyx ext/*.pxd ext/*.pxi)
PIP := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: demo test setup setup-demo system-deps bench faults clean-stamps

demo: setup-demo           ## run the whole agent against a simulated OBServer
	$(PY) -m engine demo

test: system-deps setup    ## run the whole test suite
	$(PY) -m pytest -q -p no:cacheprovider

faults: system-deps setup  ## the fault suite in its long form (tens of minutes; README's reliability table)
	ENGINE_FAULTS_LONG=1 ENGINE_FAULTS_LOG=$${ENGINE_FAULTS_LOG:-faults.jsonl} \
	  $(PY) -m pytest -q -p no:cacheprovider -s tests/faults

bench: system-deps setup   ## run every benchmark scenario (minutes)
	$(PY) -m engine bench

setup: $(STAMPS).all       ## the package, editable, with the test and bench extras
setup-demo: $(STAMPS).demo ## the package alone (all `engine demo` needs)

$(STAMPS).all: $(BUILD_INPUTS)
	@mkdir -p .make
	$(PIP) -e '.[test,bench]'
	@touch $@ $(STAMPS).demo

$(STAMPS).demo: $(BUILD_INPUTS)
	@mkdir -p .make
	$(PIP) -e .
	@touch $@

clean-stamps:              ## forget the installs: the next make installs again
	rm -rf .make

system-deps:
	./scripts/install-system-deps.sh
