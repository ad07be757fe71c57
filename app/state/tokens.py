"""State of the tokens page: the signed-in user's API tokens; create one (shown once), revoke."""

from __future__ import annotations

from typing import Any

import reflex as rx

from app import auth
from app.db import aware
from app.service import stamp
from app.state.auth import AuthState


def token_row(token: Any) -> dict[str, str]:
    """An ApiToken as the table shows it (never the token, only its first characters)."""
    expires = aware(token.expires_at)
    status = "revoked" if token.revoked_at else "active"
    if status == "active" and expires and expires <= auth.utcnow():
        status = "expired"
    return {
        "id": str(token.id),
        "name": token.name,
        "prefix": token.prefix + "…",
        "scopes": ", ".join(token.scopes),
        "created": stamp(token.created_at),
        "last_used": stamp(token.last_used_at) or "never",
        "expires": stamp(expires) or "never",
        "status": status,
    }


class TokensState(rx.State):
    """The tokens of the signed-in user (AuthGuard lets only signed-in tabs reach these events)."""

    tokens: list[dict[str, str]] = []
    new_token: str = ""  # the token just created: shown once, gone on the next load
    error: str = ""

    async def _user(self) -> auth.User:
        auth_state = await self.get_state(AuthState)
        return auth.get_user(auth_state._user_id)

    async def _reload(self) -> None:
        user = await self._user()
        self.tokens = [token_row(t) for t in auth.list_tokens(user.id)]

    @rx.event
    async def load(self):
        """Page load: the list, and forget a token shown before."""
        self.new_token, self.error = "", ""
        await self._reload()

    @rx.event
    async def issue_token(self, form: dict[str, Any]):
        """Create a token with the scopes ticked (none ticked: all the role allows)."""
        self.error, self.new_token = "", ""
        scopes = [s for s in auth.SCOPES if form.get(f"scope_{s}") in ("on", True, "true")]
        days = str(form.get("expires_in_days") or "").strip()
        try:
            secret, _ = auth.create_token(
                await self._user(),
                str(form.get("name") or ""),
                scopes or None,
                int(days) if days.isdigit() and int(days) > 0 else None,
            )
        except auth.AccountError as exc:
            self.error = str(exc)
            return
        self.new_token = secret
        await self._reload()

    @rx.event
    async def revoke_token(self, token_id: str):
        """Revoke one of the user's tokens: it stops working at once."""
        user = await self._user()
        try:
            auth.revoke_token(int(token_id), user.id)
        except (auth.NotFound, ValueError):
            self.error = "no such token"
        await self._reload()

    @rx.event
    def dismiss(self):
        """Hide the token shown once."""
        self.new_token = ""
