"""Run the benchmarks: `python -m tests.bench [NAME ...]` (what `make bench` runs).

Every `bench_*.py` module here is run in turn through its `main()`; names given on the
command line (`servers` for `bench_servers.py`) run only those.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
INTERRUPTED = 130  # what a benchmark returns after Ctrl-C: the others do not run


def bench_names() -> list[str]:
    modules = pkgutil.iter_modules([str(HERE)])
    return sorted(m.name.removeprefix("bench_") for m in modules if m.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    available = bench_names()
    chosen = argv or available
    unknown = [name for name in chosen if name not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
        return 2
    failed = []
    for name in chosen:
        print(f"== bench_{name}", flush=True)
        module = importlib.import_module(f"tests.bench.bench_{name}")
        code = module.main()
        if code == INTERRUPTED:
            return code
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
