"""Run every benchmark in this folder (bench_*.py) one after another; each prints its table.

Benchmarks are not tests: they measure, print and never fail on a number. Run with `make bench`.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    chosen = sys.argv[1:]
    for script in sorted(HERE.glob("bench_*.py")):
        if chosen and script.stem.removeprefix("bench_") not in chosen:
            continue
        print(f"== {script.stem} ==", flush=True)
        runpy.run_path(str(script), run_name="__main__")
        print(flush=True)


if __name__ == "__main__":
    main()
