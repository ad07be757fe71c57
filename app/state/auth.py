"""Web UI sign-in: the session cookie, sign in / out, and the guard every page event passes.

AuthState keeps the session secret in a cookie (`taskdeck_session`, SameSite=Strict, expires with
the session). AuthGuard is a Reflex middleware: before any event of a page's state runs, it checks
the session (app.auth) and sends a signed-out browser to /login, and refuses the write events of
viewers (WRITE_EVENTS) — so no page can submit, cancel or load data without the right account,
whatever its buttons show.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import reflex as rx
from reflex.state import (
    FrontendEventExceptionState,
    OnLoadInternalState,
    State,
    UpdateVarsInternalState,
)

from app import auth
from app.settings import get_settings

LOGIN_ROUTE = "/login"
CHECK_EVERY_S = 2.0  # a revoked, expired or disabled session stops working within this long
# Event handlers that change something, by the start of their name: members and admins only
# (every page state follows this naming, so a new page is covered without touching this file).
WRITE_EVENTS = (
    "submit",
    "cancel",
    "retry",
    "send_",
    "bulk_",
    "pause",
    "resume",
    "delete",
    "create",
    "save",
    "requeue",
)
# Handlers only admins may run: "<state class in snake case>.<handler>" (as the API: admin scope).
ADMIN_EVENTS = ("queues_state.pause", "queues_state.resume")
# States whose every event (page load included) only admins may run: "<state in snake case>".
ADMIN_STATES = ("users_state",)


class AuthState(rx.State):
    """Who is signed in on this tab."""

    session_token: str = rx.Cookie(
        "", name="taskdeck_session", same_site="strict", max_age=get_settings().session_ttl_s
    )
    username: str = ""
    role: str = ""
    _user_id: int = 0
    login_error: str = ""
    _checked_at: float = 0.0
    _checked_token: str = ""

    @rx.var
    def signed_in(self) -> bool:
        """Whether a live session is attached to this tab."""
        return self.username != ""

    @rx.var
    def can_write(self) -> bool:
        """Members and admins submit, cancel and retry; viewers only look."""
        return self.role in ("admin", "member")

    @rx.var
    def is_admin(self) -> bool:
        """Admins also pause queues and manage accounts."""
        return self.role == "admin"

    def refresh(self, force: bool = False) -> auth.Principal | None:
        """Check the session (at most every CHECK_EVERY_S) and mirror the user into the state."""
        now = time.monotonic()
        if (
            not force
            and self._checked_token == self.session_token
            and now - self._checked_at < CHECK_EVERY_S
            and self.username
        ):
            return auth.Principal(
                self._user_id,
                self.username,
                self.role,
                auth.ROLE_SCOPES.get(self.role, frozenset()),
                "session",
                0,
            )
        principal = auth.session_principal(self.session_token)
        self._checked_at, self._checked_token = now, self.session_token
        self.username = principal.username if principal else ""
        self.role = principal.role if principal else ""
        self._user_id = principal.user_id if principal else 0
        return principal

    @rx.event
    async def login(self, form: dict[str, Any]):
        """Check the credentials; open a session and go to the page asked for (or home).

        The password check (argon2: ~50-250 ms of CPU by design) runs in a thread: in the event
        loop it stopped every open tab's live updates for that long on each sign-in."""
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        if not username or not password:
            self.login_error = "enter your username and password"
            return
        client = str(self.router.session.client_ip or "unknown")
        if auth.check_login_rate(client, get_settings().login_rate_limit) is not None:
            self.login_error = "too many sign-in attempts: wait a minute"
            return
        opened = await asyncio.to_thread(auth.login, username, password)
        if opened is None:
            self.login_error = "invalid username or password"
            return
        user, secret, _expires = opened
        self.session_token = secret
        self.username, self.role, self.login_error = user.username, user.role, ""
        self._user_id = user.id
        self._checked_at, self._checked_token = time.monotonic(), secret
        target = str(self.router.url.query_parameters.get("next") or "/")
        local = target.startswith("/") and not target.startswith(("//", "/\\"))
        return rx.redirect(target if local else "/")  # never off-site (open redirect)

    @rx.event
    def logout(self):
        """End the session everywhere it is used and go to the sign-in page."""
        auth.end_session(self.session_token)
        self.session_token = ""
        self.username = self.role = ""
        self._user_id, self._checked_token = 0, ""
        return [rx.remove_cookie("taskdeck_session"), rx.redirect(LOGIN_ROUTE)]


def _state_names(*classes: type[rx.State]) -> frozenset[str]:
    return frozenset(cls.get_full_name() for cls in classes)


class AuthGuard(rx.Middleware):
    """Lets an event run only for a signed-in account allowed to do it."""

    def __init__(self) -> None:
        self.open_states = _state_names(
            State, AuthState, UpdateVarsInternalState, FrontendEventExceptionState
        )
        self.page_load = OnLoadInternalState.get_full_name()

    async def preprocess(self, app, state, event):  # noqa: ANN001, ANN201
        """None to let the event run; a redirect or a refusal instead of it otherwise."""
        state_name, _, handler = event.name.rpartition(".")
        if state_name in self.open_states:
            return None
        auth_state = await state.get_state(AuthState)
        path = str(state.router.url.path or "/").rstrip("/") or "/"
        if state_name == self.page_load and path == LOGIN_ROUTE:
            return None
        principal = auth_state.refresh(force=state_name == self.page_load)
        if principal is None:
            target = f"{LOGIN_ROUTE}?next={quote(path)}" if path != "/" else LOGIN_ROUTE
            return await _answer(state, rx.redirect(target))
        if handler.startswith(WRITE_EVENTS) and not principal.allows("write"):
            return await _answer(state, rx.toast.error("viewers cannot change anything"))
        admin_only = event.name.endswith(ADMIN_EVENTS) or state_name.endswith(
            tuple(f"____{name}" for name in ADMIN_STATES)
        )
        if admin_only and not principal.allows("admin"):
            return await _answer(state, rx.toast.error("only admins can do that"))
        return None


async def _answer(state, *specs):  # noqa: ANN001, ANN202
    """A StateUpdate that sends the AuthState changes and the given frontend events."""
    from reflex.istate.delta import _resolve_delta
    from reflex.state import StateUpdate
    from reflex_base.event import Event

    events = [e for spec in specs for e in Event.from_event_type(spec)]
    delta = await _resolve_delta(state._get_root_state().get_delta())
    state._get_root_state()._clean()
    return StateUpdate(delta=delta, events=events)
