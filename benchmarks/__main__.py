"""``python -m benchmarks [--quick] [--only NAME]``: see the package docstring."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys

import benchmarks
from benchmarks import harness

NOT_BENCHMARK_MODULES = {"__main__", "harness"}


def load_all() -> None:
    """Import every benchmark module of the package, so each registers its benchmarks."""
    for module in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        if module.name not in NOT_BENCHMARK_MODULES:
            importlib.import_module(f"benchmarks.{module.name}")


def main(argv: list[str] | None = None) -> int:
    load_all()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="run each benchmark at a tenth of its size (CI)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        choices=list(harness.REGISTRY),
        help="run only this benchmark (repeatable)",
    )
    args = parser.parse_args(argv)
    results = harness.run(args.only, quick=args.quick)
    for result in results:
        print(json.dumps(result.as_dict()), flush=True)
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
