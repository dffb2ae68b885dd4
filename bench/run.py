"""Run every benchmark (make bench): the ghost-text figures, then trigger latency and responsiveness.
Each prints its table and writes JSON under bench/results/; docs/benchmarks.md records the runs."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script, args in [("ghost.py", sys.argv[1:] or []), ("responsiveness.py", [])]:
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args], check=True)
