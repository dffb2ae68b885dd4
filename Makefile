# The two commands of the README.
.PHONY: setup test bench
setup:
	./scripts/setup.sh
test:
	.venv/bin/python -m pytest -q
bench:
	.venv/bin/python bench/run.py
