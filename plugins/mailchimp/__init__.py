"""Mailchimp: the newsletter audience, kept in step with newsletter consent.

Configured by ``[plugins.mailchimp]``::

    [plugins.mailchimp]
    enabled = true
    api_key_env = "MAILCHIMP_API_KEY"   # the key ends in its data centre, e.g. "...-us21"
    list_id = "5c1a9e0d42"              # the audience id (required)
    # send_names = true                 # FNAME/LNAME merge fields; false sends addresses only
    # base_url = "https://..."          # another API address (an imitation or a sandbox)
    # timeout_seconds = 10

It talks to Mailchimp through the official ``mailchimp-marketing`` SDK
(:mod:`plusjeklas_plugins.mailchimp.client` explains what is done about its habits).
"""

from __future__ import annotations

from collections.abc import Callable

from plusjeklas_plugins.mailchimp.provider import MailchimpProvider

from plusjeklas_tui.hookspecs import hookimpl
from plusjeklas_tui.providers import Provider

__version__ = "1.0.0"
__all__ = ["MailchimpProvider", "register_providers"]


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(MailchimpProvider)
