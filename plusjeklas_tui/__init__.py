"""Plusjeklas TUI: the privacy back office of Jongleren.biz."""

__version__ = "0.1.0"
