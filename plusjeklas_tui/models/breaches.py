"""The breach register (GDPR art. 33(5))."""

from __future__ import annotations
