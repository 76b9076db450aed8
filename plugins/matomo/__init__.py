"""The matomo provider plugin (being written)."""
