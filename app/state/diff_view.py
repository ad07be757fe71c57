"""How a browser likes to see diffs: unified or side by side, kept in its localStorage."""

from __future__ import annotations

import reflex as rx

MODES = ("unified", "split")


class DiffViewState(rx.State):
    """The diff view mode of this browser (shared by its tabs, remembered across visits)."""

    mode: str = rx.LocalStorage("unified", name="taskdeck-diff-mode", sync=True)

    @rx.event
    def set_mode(self, value: str | list[str]):
        """Switch the view; anything but a known mode is ignored."""
        if isinstance(value, str) and value in MODES:
            self.mode = value
