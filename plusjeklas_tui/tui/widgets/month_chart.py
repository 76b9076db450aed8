"""A horizontal bar chart of counts per month, in plain block characters (no true colour)."""

from __future__ import annotations

import datetime as dt

from textual.content import Content
from textual.widgets import Static

BAR_WIDTH = 30


def render_chart(counts: list[tuple[dt.date, int]], width: int = BAR_WIDTH) -> Content:
    peak = max((count for _, count in counts), default=0)
    lines = []
    for month, count in counts:
        length = 0 if peak == 0 else max(1 if count else 0, round(count / peak * width))
        lines.append(
            Content.assemble(
                f"{month:%Y-%m} ", ("█" * length, "$warning"), f" {count}" if count else " 0"
            )
        )
    return Content("\n").join(lines) if lines else Content("")


class MonthChart(Static):
    def show(self, counts: list[tuple[dt.date, int]]) -> None:
        self.update(render_chart(counts))
