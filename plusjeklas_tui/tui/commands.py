"""Command palette (Ctrl+P): jump to any screen, or to any organisation by name or BRIN."""

from __future__ import annotations

import asyncio
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from plusjeklas_tui.tui.i18n import t

SCREENS = (
    "dashboard",
    "organisations",
    "people",
    "audit",
    "providers",
    "retention",
    "deletions",
    "requests",
    "breaches",
    "feedback",
)
ORGANISATION_HITS = 20


class JumpCommands(Provider):
    async def discover(self) -> Hits:
        for screen in SCREENS:
            text = t("palette.screen", screen=t(f"nav.{screen}"))
            yield DiscoveryHit(Content(text), self._goto(screen), text=text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for screen in SCREENS:
            text = t("palette.screen", screen=t(f"nav.{screen}"))
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), self._goto(screen), text=text)
        if len(query.strip()) >= 2:
            from plusjeklas_tui.services import queries

            rows = await asyncio.to_thread(
                queries.search_organisations, self.app.context.engine, query, ORGANISATION_HITS
            )
            for rank, row in enumerate(rows):
                # Names come from the database: plain Content, never markup.
                text = t("palette.organisation", name=row.name, brin=row.brin)
                score = 0.9 - rank * 0.01
                yield Hit(
                    score, Content(text), partial(self.app.open_organisation, row.id), text=text
                )

    def _goto(self, screen: str) -> partial[object]:
        return partial(self.app.run_action, f"goto('{screen}')")
