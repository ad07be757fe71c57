"""State every page shares: the demo-mode flag, the alert banner, whether a tab is open, and
how a live loop notes a failed read."""

from __future__ import annotations

import asyncio
import functools
import logging

import reflex as rx
from sqlalchemy.exc import SQLAlchemyError

from app.settings import get_settings

ALERT_POLL_S = 5.0

log = logging.getLogger(__name__)


@functools.cache
def _reflex_app():  # noqa: ANN202
    """The running Reflex app, looked up once: `get_app()` puts the working directory on
    sys.path again on every call, and the follow loops ask for each event they read."""
    from reflex.utils.prerequisites import get_app

    return get_app().app


def client_connected(token: str) -> bool:
    """Whether the browser tab of this state token still has a live websocket."""
    try:
        namespace = _reflex_app().event_namespace
        return namespace is None or token in namespace.token_to_sid
    except Exception:
        return True


def note_failure(what: str, exc: Exception, failing: bool) -> bool:
    """A live page's read or update failed (a database that does not answer, say): log it at
    the first failure of a run of them, not at every try, and tell the loop it is failing
    (True). Raised, it would end the loop, and the tab would show that moment for good."""
    if not failing:
        log.warning(
            "%s: a live read failed (%s); trying again",
            what,
            getattr(exc, "orig", None) or exc.__class__.__name__,
            exc_info=not isinstance(exc, SQLAlchemyError),  # not the database: show where
        )
    return True


def read_alerts() -> list[dict[str, str]]:
    """The firing alerts as the banner shows them (empty if Redis does not answer)."""
    from app import alerts

    try:
        return [
            {"alert": a["alert"], "level": a["level"], "message": a["message"]}
            for a in alerts.active()
        ]
    except Exception:
        return []


class AppState(rx.State):
    """Shared flags shown in the frame of every page."""

    demo_mode: bool = get_settings().demo_mode
    alerts: list[dict[str, str]] = []
    watching_alerts: bool = False

    @rx.event(background=True)
    async def watch_alerts(self):
        """Keep the alert banner current while the tab is open (one loop per tab)."""
        async with self:
            if self.watching_alerts:
                return
            self.watching_alerts = True
            token = self.router.session.client_token
        try:
            while client_connected(token):
                current = await asyncio.to_thread(read_alerts)
                async with self:
                    if current != self.alerts:
                        self.alerts = current
                await asyncio.sleep(ALERT_POLL_S)
        finally:
            async with self:
                self.watching_alerts = False
