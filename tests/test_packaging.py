"""A non-editable install carries every module, style sheet and migration template."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_SUFFIXES = {".py", ".tcss", ".mako"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed() -> None:
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "plusjeklas_tui").rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert "plusjeklas_plugins" in listed and "plugins" not in listed


def test_wheel_contains_every_shipped_file(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("plusjeklas_tui-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "plusjeklas_tui").rglob("*")
        if path.suffix in SHIPPED_SUFFIXES and "__pycache__" not in path.parts
    }
    expected |= {
        "plusjeklas_plugins/" + str(path.relative_to(ROOT / "plugins"))
        for path in (ROOT / "plugins").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    missing = expected - names
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert not any(name.startswith("plugins/") for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "plusjeklas = plusjeklas_tui.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
