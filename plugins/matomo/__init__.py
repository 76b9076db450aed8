"""Matomo: website analytics, kept in step with analytics consent.

Configured by ``[plugins.matomo]``::

    [plugins.matomo]
    enabled = true
    base_url = "https://analytics.jongleren.biz"   # the Matomo installation (required)
    api_key_env = "MATOMO_TOKEN_AUTH"   # token_auth of a user with admin access to the site(s)
    site_id = 1                         # the website's id in Matomo (required)
    # also_site_ids = [2, 3]            # other sites where the same user ids are set: their
    #                                   # visits are found, exported and deleted too
    # page_size = 500                   # visits per sync page
    # company = "InnoCraft Ltd (Matomo Cloud)"  # a Matomo hosted by another company; then
    # country = "NZ"                    # agreement is required (and transfer_safeguard
    # agreement = "Matomo Cloud DPA, kept in ..."  # outside the EEA). Default: self-hosted, NL.
    # timeout_seconds = 10

It talks to Matomo's Reporting API over httpx, sending the token in the POST body only
(:mod:`plusjeklas_plugins.matomo.client`); what each operation does is in
:mod:`plusjeklas_plugins.matomo.provider`, and how user ids are issued and matched in
:mod:`plusjeklas_plugins.matomo.ids`.
"""

from __future__ import annotations

from collections.abc import Callable

from plusjeklas_plugins.matomo.provider import MatomoProvider

from plusjeklas_tui.hookspecs import hookimpl
from plusjeklas_tui.providers import Provider

__version__ = "1.0.0"
__all__ = ["MatomoProvider", "register_providers"]


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(MatomoProvider)
