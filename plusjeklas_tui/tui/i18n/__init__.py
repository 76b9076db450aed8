"""The one catalogue of every string the staff app shows, in Dutch and English.

Each area of the app keeps its strings in a module of this package (``common``, ``dashboard``,
...) as ``STRINGS = {"key": ("Nederlands", "English")}``; :func:`t` looks them up in the
configured language (``language`` in the config, default ``nl``). Keys are dotted and unique
across modules; a test checks that both languages are filled and every placeholder matches.

Strings here are chosen by code. Values filled into them may come from the database, so the
result is always shown as plain text (``Content(...)`` / ``markup=False``), never as markup.
"""

from __future__ import annotations

import importlib
import pkgutil
import string
from dataclasses import replace
from typing import Any

LANGUAGES = ("nl", "en")
_language = "nl"


def _load() -> dict[str, tuple[str, str]]:
    merged: dict[str, tuple[str, str]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for key, texts in module.STRINGS.items():
            if key in merged:
                raise RuntimeError(f"i18n key {key!r} defined twice (again in {info.name})")
            merged[key] = texts
    return merged


CATALOGUE: dict[str, tuple[str, str]] = _load()


def set_language(language: str) -> None:
    global _language
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    _language = language


def language() -> str:
    return _language


def t(key: str, **values: Any) -> str:
    """The text for *key* in the current language, with ``{placeholders}`` filled in."""
    text = CATALOGUE[key][LANGUAGES.index(_language)]
    return text.format(**values) if values else text


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _translated_group(group: Any) -> Any:
    if group is None or group.description not in CATALOGUE:
        return group
    return replace(group, description=t(group.description))


def translate_bindings(node: Any) -> None:
    """Replace catalogue keys in a node's binding descriptions with their text.

    ``BINDINGS`` are class attributes, fixed before the language is known; each instance
    holds its own copy of the bindings map, which is rewritten here, once, at construction.
    """
    bindings = node._bindings.key_to_bindings
    for key, entries in bindings.items():
        bindings[key] = [
            replace(
                entry,
                description=t(entry.description)
                if entry.description in CATALOGUE
                else entry.description,
                tooltip=t(entry.tooltip) if entry.tooltip in CATALOGUE else entry.tooltip,
                group=_translated_group(entry.group),
            )
            for entry in entries
        ]
