"""Validation errors in the interface language: each rule code looked up in the catalogue.

:class:`~plusjeklas_tui.validation.FieldError` carries codes and parameters besides its
English text; here they become the configured language. A rule without a code (plain text
from a service that has not given its rules codes yet) is shown as it came, in English.
"""

from __future__ import annotations

from plusjeklas_tui.tui.i18n import CATALOGUE, t
from plusjeklas_tui.validation import RULES, FieldError


def rule_template(code: str) -> str:
    """A rule code's text in the current language (English when the catalogue lacks it)."""
    key = f"validation.{code}"
    return t(key) if key in CATALOGUE else RULES.get(code, code)


def rule_text(error: FieldError) -> str:
    """What is wrong, for under the field: the rule without the field's name or value."""
    return error.explain(rule_template)


def field_label(error: FieldError) -> str:
    key = f"validation.field.{error.field}"
    return t(key) if key in CATALOGUE else error.label


def error_text(error: FieldError) -> str:
    """The field's name and the rule, never the value: for errors shown apart from a field."""
    return f"{field_label(error)}: {rule_text(error)}"
