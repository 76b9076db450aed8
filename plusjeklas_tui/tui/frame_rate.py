"""How soon a change reaches the terminal: Textual draws at most this many frames a second.

Textual gathers changes and draws them on a fixed grid of ``1 / TEXTUAL_FPS`` seconds (60 by
default). A filter keystroke changes the screen twice in quick succession (the letter in the
input, then the rows some 10-20 ms later), so the rows usually wait for the next grid point:
up to 17 ms of a 50 ms budget spent waiting. At 120 the wait halves. It costs nothing while
idle (no change, no frame) and little over SSH: a frame is only the lines that changed.

A ``TEXTUAL_FPS`` set in the environment still wins (Textual's own setting).
"""

from __future__ import annotations

import os

FRAMES_PER_SECOND = 120


def use_frame_rate(frames_per_second: int = FRAMES_PER_SECOND) -> None:
    """Set Textual's screen update period (read when a screen first draws)."""
    if "TEXTUAL_FPS" in os.environ:
        return
    import textual.screen

    textual.screen.UPDATE_PERIOD = 1 / frames_per_second
