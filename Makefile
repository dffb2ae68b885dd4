# The two commands of the README.
.PHONY: setup test bench
setup:
	./scripts/setup.sh
test:
	.venv/bin/python -m ruff check --quiet ai_host tests bench rplugin
	.venv/bin/python -m pytest -q -n auto --dist worksteal
# `make bench BENCH_ARGS=--quick` for a short smoke run; see docs/benchmarks.md.
bench:
	.venv/bin/python -m pip install --quiet -e '.[bench]'
	.venv/bin/python bench/run.py $(BENCH_ARGS)
