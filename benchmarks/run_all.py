"""Run every benchmark in this folder, one process each, in a fixed order (``make bench``).

Each benchmark writes its own section of ``benchmarks/RESULTS.md``. A benchmark that fails is
reported and the others still run; the exit code is the number of failures. Pass names to run
only some, e.g. ``python benchmarks/run_all.py overhead speed``; extra arguments for one
benchmark go after ``--`` only when a single name is given.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Benchmarks that are not run by ``make bench`` (helpers, or this script).
NOT_BENCHMARKS = {"run_all.py", "results.py"}


def benchmarks() -> list[Path]:
    """Every ``*.py`` of this folder that is a benchmark (has a ``main``), sorted by name."""
    return sorted(p for p in HERE.glob("*.py")
                  if p.name not in NOT_BENCHMARKS and not p.name.startswith("_")
                  and "def main(" in p.read_text())


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        argv, extra = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    chosen = benchmarks()
    if argv:
        unknown = sorted(set(argv) - {p.stem for p in chosen})
        if unknown:
            print(f"run_all: unknown benchmark(s) {', '.join(unknown)}; known: "
                  f"{', '.join(p.stem for p in chosen)}", file=sys.stderr)
            return 2
        chosen = [p for p in chosen if p.stem in argv]
    failures = 0
    for path in chosen:
        print(f"== {path.stem}", flush=True)
        start = time.perf_counter()
        args = extra if len(chosen) == 1 else []
        code = subprocess.call([sys.executable, str(path), *args], cwd=HERE.parent)
        print(f"== {path.stem}: {'ok' if code == 0 else f'FAILED (exit {code})'} in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        failures += code != 0
    return failures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
