"""The mollie provider plugin (being written)."""
