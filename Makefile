# Two commands on a fresh machine: `make run` and `make test`. Both install what they need.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.install-stamp

.PHONY: install run test test-unit test-integration test-tools lint services bench bench-gpu clean

# torch and torchvision are pinned and installed first, from the package index itself
# (--isolated: a local CPU-only torch wheel would not load torchvision's compiled ops).
# That is the CUDA build of torch 2.13.0 (~5 GB): it runs on CPU here and on a GPU when
# there is one. Everything else resolves around it.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --isolated torch==2.13.0 torchvision==0.28.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -c "import torch, torchvision; torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/synthgen demo

# Postgres and Redis are expected on 127.0.0.1; start them when they are down.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && exit 0; sleep 1; done; echo "Postgres/Redis did not come up"; exit 1

# The browser tests drive Debian's chromium through Playwright (no browser download).
test-tools:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	@command -v jq >/dev/null || (apt-get update -qq && apt-get install -y -qq jq >/dev/null)  # README's curl examples (tests/e2e/test_readme_examples.py)
	@chromium --headless --no-sandbox --disable-gpu --dump-dom about:blank >/dev/null 2>&1 || (echo "chromium does not start"; exit 1)

# --durations: the run ends with its slowest tests, so a CI log shows where the time goes.
test: install services test-tools
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install services
	$(BIN)/python -m pytest -q tests/integration

lint: install
	$(BIN)/ruff check api core worker clients models tests bench
	$(BIN)/mypy
	PYTHONPATH=.:clients/python $(BIN)/lint-imports --no-cache

bench: install services
	$(BIN)/python bench/submission.py
	$(BIN)/python bench/sampling.py

# Every GPU benchmark against diffusers and pytorch-fid in one run (issue 16); on a host
# without this venv, see bench/gpu.py's docstring for the one-line command with wheels.
bench-gpu: install
	$(BIN)/python bench/gpu.py --out bench/out/gpu.json

clean:
	rm -rf .synthgen synthgen-demo bench/out
