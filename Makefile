# Two entry points for a fresh machine:
#   make demo  -> the main job with no cloud account (a dry-run launch of a bundled example repo)
#   make test  -> the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv system-deps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/gpu-lol up examples/qlora-finetune --dry-run --no-llm

# Debian packages the tests need (a real sshd on loopback, rsync for syncs).
system-deps:
	@bash scripts/install-system-deps.sh

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
