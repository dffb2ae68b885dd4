# The two commands of the README.
.PHONY: setup test bench
setup:
	./scripts/setup.sh
test:
	.venv/bin/python -m ruff check --quiet ai_host tests bench rplugin
	@# one worker more than cores: the tests wait on Neovim and servers about half the time
	.venv/bin/python -m pytest -q -n $$(( $$(nproc) + 1 )) --dist worksteal
# `make bench BENCH_ARGS=--quick` for a short smoke run; see docs/benchmarks.md.
bench:
	.venv/bin/python -m pip install --quiet -e '.[bench]'
	.venv/bin/python bench/run.py $(BENCH_ARGS)
