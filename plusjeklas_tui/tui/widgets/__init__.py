"""Reusable widgets of the staff app."""
