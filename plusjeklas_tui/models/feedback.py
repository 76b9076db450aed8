"""Feedback requests: the statement's reason to keep data two years after a subscription ends."""

from __future__ import annotations
