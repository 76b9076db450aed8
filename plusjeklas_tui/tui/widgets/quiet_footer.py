"""A footer that redraws only when the keys it shows change.

Textual's :class:`~textual.widgets.Footer` rebuilds all its keys whenever the screen says its
bindings *may* have changed, which is after every focus change. Rebuilding removes and mounts
a widget per key and lays the footer out again: over SSH that is hundreds of bytes for a row
that usually looks exactly the same (``/`` into the filter, Escape back to the list). This
footer compares what it would show with what it shows and rebuilds only on a difference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Footer

if TYPE_CHECKING:
    from textual.screen import Screen

Shown = tuple[object, ...]

WIDE_FOOTER = 140
"""From this width the footer names each screen key instead of grouping them."""


class QuietFooter(Footer):
    """:class:`Footer`, minus the rebuilds that would draw the same keys again."""

    def __init__(self) -> None:
        # compact: at 80 columns every screen's own keys and the navigation keys must fit;
        # the palette is Ctrl+P (listed by `?`), not a footer entry
        super().__init__(compact=True, show_command_palette=False)
        self._shown: Shown | None = None

    def on_resize(self) -> None:
        """Wide terminals name every screen key; narrow ones show them as one group."""
        combine = self.size.width < WIDE_FOOTER
        if combine != self.combine_groups:
            self.combine_groups = combine
            if self.is_attached:
                self.call_after_refresh(self._recompose_if_changed)

    def shown_keys(self) -> Shown:
        """Everything :meth:`Footer.compose` draws from: shown bindings, their state, options."""
        active = self.screen.active_bindings
        keys = tuple(
            (binding, enabled, tooltip)
            for _namespace, binding, enabled, tooltip in active.values()
            if binding.show
        )
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        palette_state = None if palette is None else (palette.binding, palette.enabled)
        return (keys, palette_state, self.compact, self.show_command_palette, self.combine_groups)

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if not self.is_attached:
            return
        shown = self.shown_keys()
        if shown != self._shown:
            self._shown = shown
            await self.recompose()
