"""A horizontal bar chart of counts per month, in plain block characters (no true colour)."""

from __future__ import annotations

import datetime as dt

from textual.content import Content
from textual.widget import Widget

LABEL_WIDTH = len("2026-11 ")


def render_chart(counts: list[tuple[dt.date, int]], width: int) -> Content:
    """One line per month: label, a bar scaled to the largest count, the count."""
    peak = max((count for _, count in counts), default=0)
    count_width = len(str(peak)) + 1
    bar_room = max(1, width - LABEL_WIDTH - count_width - 1)
    lines = []
    for month, count in counts:
        length = 0 if peak == 0 else max(1 if count else 0, round(count / peak * bar_room))
        lines.append(Content.assemble(f"{month:%Y-%m} ", ("█" * length, "$warning"), f" {count}"))
    return Content("\n").join(lines)


class MonthChart(Widget):
    DEFAULT_CSS = """
    MonthChart { height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.counts: list[tuple[dt.date, int]] = []

    def show(self, counts: list[tuple[dt.date, int]]) -> None:
        self.counts = counts
        self.refresh(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self.counts))

    def render(self) -> Content:
        return render_chart(self.counts, self.content_size.width)
