# The two set-up commands of the README:
#   make demo   install, then run the main job on the bundled demo stack with the shipped model
#   make test   install (with test tools), then run the test suite
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-test demo test lint bench

install:
	bash scripts/install.sh

install-test:
	bash scripts/install.sh test

demo: install
	$(BIN)/insar-denoise demo -o demo_out --overwrite

test: install-test
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -q -n auto --dist loadfile

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
