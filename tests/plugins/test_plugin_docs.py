"""Every hook and provider method is documented and exercised by a test (as Datasette does)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from plusjeklas_tui import hookspecs
from plusjeklas_tui.providers import Provider

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
TESTS = "\n".join(
    path.read_text(encoding="utf-8")
    for path in (ROOT / "tests").rglob("*.py")
    if path.name != Path(__file__).name
)

HOOKS = sorted(
    name
    for name, value in vars(hookspecs).items()
    if callable(value) and hasattr(value, "plusjeklas_spec")
)
METHODS = sorted(Provider.__abstractmethods__)


def test_the_lists_are_what_we_expect() -> None:
    assert HOOKS == ["consent_changed", "record_changed", "register_providers", "subject_erased"]
    assert METHODS == ["erase", "export", "health", "push", "sync", "verify_erased"]


@pytest.mark.parametrize("name", HOOKS + METHODS)
def test_documented(name: str) -> None:
    assert re.search(rf"^### {name}$", DOCS, re.MULTILINE), f"docs/plugins.md lacks ### {name}"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_docstring_and_a_test(name: str) -> None:
    assert inspect.getdoc(getattr(hookspecs, name))
    assert re.search(rf"def {name}\(", TESTS), f"no test implements the {name} hook"


@pytest.mark.parametrize("name", METHODS)
def test_provider_method_is_called_by_a_test(name: str) -> None:
    assert re.search(rf"\.{name}\(", TESTS), f"no test calls a provider's {name}()"
