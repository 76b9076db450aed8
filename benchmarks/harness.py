"""The benchmark registry, the shared workspace and the timing helpers."""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from plusjeklas_tui import db
from plusjeklas_tui.config import load_file
from plusjeklas_tui.crypto import Keyring, load_key_file
from plusjeklas_tui.services import demo

FULL_SCHOOLS = 100_000


@dataclass(frozen=True)
class Result:
    """One line of output; see the package docstring for the meaning of each field."""

    name: str
    value: float | None
    unit: str
    target: float | None
    floor: float | None
    ratio: float | None
    ok: bool

    @classmethod
    def of(
        cls,
        name: str,
        value: float,
        unit: str,
        *,
        target: float | None = None,
        floor: float | None = None,
        floor_factor: float | None = None,
    ) -> Result:
        if target is None and floor is None:
            raise ValueError(f"benchmark {name}: needs a target or a floor")
        if floor is not None and floor_factor is None:
            raise ValueError(f"benchmark {name}: a floor needs its floor factor")
        ok = True
        if target is not None:
            ok = value <= target
        if floor is not None and floor_factor is not None:
            ok = ok and value <= floor_factor * floor
        reference = floor if floor is not None else target  # "ratio" is against the floor
        ratio = value / reference if reference else None
        return cls(
            name,
            _round(value),
            unit,
            _round(target),
            _round(floor),
            None if ratio is None else round(ratio, 3),
            ok,
        )

    @classmethod
    def failed(cls, name: str) -> Result:
        return cls(name, None, "", None, None, None, False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "floor": self.floor,
            "ratio": self.ratio,
            "ok": self.ok,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.4g}")


@dataclass
class DemoWorld:
    """A generated demo database, opened with its key."""

    config_path: Path
    database_path: Path
    keyring: Keyring
    engine: Engine
    schools: int


@dataclass
class Workspace:
    """What benchmarks share in one run: the size, a temporary folder, the demo database."""

    quick: bool
    root: Path
    _demo: DemoWorld | None = field(default=None, repr=False)

    def size(self, full: int) -> int:
        """*full* in a normal run, a tenth of it with ``--quick``."""
        return max(1, full // 10) if self.quick else full

    def scale_target(self, full_target: float) -> float:
        """A target that grows with the size (a total time) at this run's size."""
        return full_target / 10 if self.quick else full_target

    def new_dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=False)
        return path

    def demo(self) -> DemoWorld:
        """The demo database of :data:`FULL_SCHOOLS` (scaled) schools, made on first use."""
        if self._demo is None:
            schools = self.size(FULL_SCHOOLS)
            say(f"preparing a demo database of {schools:,} schools ...")
            setup = demo.prepare_demo(self.new_dir("demo") / "demo.db", schools=schools)
            self.adopt_demo(setup.config_path, schools)
        assert self._demo is not None
        return self._demo

    def adopt_demo(self, config_path: Path, schools: int) -> DemoWorld:
        """Use a demo database a benchmark has just made as the shared one."""
        self.close()
        settings = load_file(config_path)
        keyring = load_key_file(settings.key_file)
        engine = db.make_engine(settings.database_url, keyring)
        path = Path(engine.url.database or "")
        self._demo = DemoWorld(config_path, path, keyring, engine, schools)
        return self._demo

    def close(self) -> None:
        if self._demo is not None:
            self._demo.engine.dispose()
            self._demo = None


BenchmarkFunction = Callable[[Workspace], Result]
REGISTRY: dict[str, BenchmarkFunction] = {}


def benchmark(name: str) -> Callable[[BenchmarkFunction], BenchmarkFunction]:
    """Register a benchmark under *name* (run in registration order)."""

    def register(function: BenchmarkFunction) -> BenchmarkFunction:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name} is registered twice")
        REGISTRY[name] = function
        return function

    return register


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median_seconds(
    operations: Iterable[Callable[[], object]], *, warmup: int = 2, repeat: int = 5
) -> float:
    """Median wall time of calling each operation *repeat* times, after *warmup* rounds.

    The garbage collector is paused while timing, so one operation does not pay for the
    garbage of another.
    """
    ops = list(operations)
    for _ in range(warmup):
        for op in ops:
            op()
    timings = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            for op in ops:
                start = time.perf_counter()
                op()
                timings.append(time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(timings)


def run(names: list[str] | None, *, quick: bool) -> list[Result]:
    """Run the named benchmarks (all when *names* is None) in a fresh temporary folder."""
    import traceback

    selected = names or list(REGISTRY)
    unknown = [n for n in selected if n not in REGISTRY]
    if unknown:
        raise SystemExit(
            f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(REGISTRY)}"
        )
    results = []
    with tempfile.TemporaryDirectory(prefix="plusjeklas-bench-") as tmp:
        workspace = Workspace(quick=quick, root=Path(tmp))
        try:
            for name in selected:
                say(f"benchmark {name} ...")
                try:
                    result = REGISTRY[name](workspace)
                except Exception:
                    traceback.print_exc(file=sys.stderr)
                    result = Result.failed(name)
                results.append(result)
        finally:
            workspace.close()
    return results
