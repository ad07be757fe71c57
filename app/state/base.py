"""State every page shares: demo-mode flag and a way to tell whether a tab is still open."""

from __future__ import annotations

import reflex as rx

from app.settings import get_settings


def client_connected(token: str) -> bool:
    """Whether the browser tab of this state token still has a live websocket."""
    try:
        from reflex.utils.prerequisites import get_app

        namespace = get_app().app.event_namespace
        return namespace is None or token in namespace.token_to_sid
    except Exception:
        return True


class AppState(rx.State):
    """Shared flags shown in the frame of every page."""

    demo_mode: bool = get_settings().demo_mode
