# The two commands of the README: `make try` and `make test` (each sets up what it needs).
.PHONY: setup test try try-check bench
# set up only when something is missing (`make setup` always runs it again)
READY = [ -x .venv/bin/nvim ] && [ -f .venv/rplugin.vim ] && .venv/bin/python -c 'import ai_host, pynvim, llama_cpp.server, xdist, ruff, mypy, trustme' 2>/dev/null \
	&& { [ -x $(STYLUA) ] || ! command -v npm >/dev/null 2>&1; }
# stylua from npm (scripts/setup.sh installs it where npm is there)
STYLUA = .venv/stylua/node_modules/.bin/stylua
setup:
	./scripts/setup.sh
test:
	@$(READY) || ./scripts/setup.sh
	.venv/bin/python -m ruff check --quiet ai_host tests bench rplugin scripts
	.venv/bin/python -m ruff format --check --quiet ai_host tests bench rplugin scripts
	.venv/bin/python -m mypy --strict --no-error-summary ai_host
	@if [ -x $(STYLUA) ]; then $(STYLUA) --check lua/ plugin/; \
	else echo 'ai_host: stylua is not installed (it needs npm): the Lua format check was skipped'; fi
	@# two workers more than cores: the tests wait on Neovim and servers much of the time
	@# (2 cores: 230 s with 3 workers, 186 s with 4)
	.venv/bin/python -m pytest -q -n $$(( $$(nproc) + 2 )) --dist worksteal
# Neovim with a real local model (Qwen2.5-Coder-0.5B from PyPI, served by llama.cpp on 127.0.0.1)
try:
	@$(READY) || ./scripts/setup.sh
	.venv/bin/python scripts/try.py $(TRY_ARGS)
# the same without a screen: one suggestion and one explanation, checked; exits (CI)
try-check:
	@$(MAKE) --no-print-directory try TRY_ARGS=--check
# `make bench BENCH_ARGS=--quick` for a short smoke run; see docs/benchmarks.md.
bench:
	.venv/bin/python -m pip install --quiet -e '.[bench]'
	.venv/bin/python bench/run.py $(BENCH_ARGS)
