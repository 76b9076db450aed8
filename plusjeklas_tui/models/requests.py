"""Data-subject requests (GDPR art. 15-21)."""

from __future__ import annotations
