"""Results of the promise audit (`plusjeklas audit promises`)."""

from __future__ import annotations
