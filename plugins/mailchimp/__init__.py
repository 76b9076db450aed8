"""The mailchimp provider plugin (being written)."""
