# The two entry points of README.md. Both set up what they need first.
PY ?= python3

.PHONY: demo test setup system-deps bench

demo: setup                ## run the whole agent against a simulated OBServer
	$(PY) -m engine demo

test: system-deps setup    ## run the whole test suite
	$(PY) -m pytest -q -p no:cacheprovider

bench: system-deps setup   ## run every benchmark scenario (minutes)
	$(PY) -m engine bench

setup:
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,bench]'

system-deps:
	./scripts/install-system-deps.sh
