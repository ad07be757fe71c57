"""State of the users page (admins only): the accounts, create one, change a role, disable/enable.

Every change goes through app.auth, as /api/v1/users does: the same rules (username and password
checks, no admin locking themselves out) and the same effects (a disabled user's sessions end and
their tokens stop working). AuthGuard refuses every event of this state to non-admins
(ADMIN_STATES), page load included.
"""

from __future__ import annotations

import secrets
from typing import Any

import reflex as rx

from app import auth
from app.models import Role
from app.service import stamp
from app.state.auth import AuthState

GENERATED_PASSWORD_BYTES = 12  # a password the page makes up: 16 URL-safe characters


def user_row(user: auth.User, me: int) -> dict[str, str]:
    """An account as the table shows it (never its password hash)."""
    return {
        "id": str(user.id),
        "username": user.username,
        "role": user.role,
        "state": "active" if user.is_active else "disabled",
        "created": stamp(user.created_at),
        "last_login": stamp(user.last_login_at) or "never",
        "self": "true" if user.id == me else "false",
    }


class UsersState(rx.State):
    """The accounts, the form's inline errors, and a generated password shown once."""

    users: list[dict[str, str]] = []
    errors: dict[str, str] = {}
    created: str = ""  # the username just created
    new_password: str = ""  # the password the page generated for it: shown once
    message: str = ""

    async def _me(self) -> int:
        return (await self.get_state(AuthState))._user_id

    async def _reload(self) -> None:
        me = await self._me()
        self.users = [user_row(u, me) for u in auth.list_users()]

    def _clear(self) -> None:
        self.errors, self.created, self.new_password, self.message = {}, "", "", ""

    @rx.event
    async def load(self):
        """Page load: the list (a password shown before is gone)."""
        self._clear()
        await self._reload()

    @rx.event
    async def create_user(self, form: dict[str, Any]):
        """Create an account; an empty password field makes one up and shows it once."""
        self._clear()
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        role = str(form.get("role") or Role.MEMBER)
        if not username:
            self.errors = {"username": "enter a username"}
            return
        generated = password == ""
        if generated:
            password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        try:
            user = auth.create_user(username, password, role)
        except auth.AccountError as exc:
            self.errors = {exc.field: str(exc)}
            return
        self.created = user.username
        self.new_password = password if generated else ""
        await self._reload()

    async def _update(self, user_id: str, **changes: Any) -> None:
        self._clear()
        try:
            user = auth.update_user(int(user_id), actor_id=await self._me(), **changes)
        except (auth.SelfLockout, auth.AccountError) as exc:
            self.message = str(exc)
        except (auth.NotFound, ValueError):
            self.message = "no such user"
        else:
            self.message = (
                f"{user.username}: {user.role}, {'active' if user.is_active else 'disabled'}"
            )
        await self._reload()

    @rx.event
    async def change_role(self, user_id: str, role: str):
        """Give an account another role (it applies to its open sessions within seconds)."""
        await self._update(user_id, role=role)

    @rx.event
    async def disable_user(self, user_id: str):
        """Disable an account: it cannot sign in, its sessions end, its tokens stop working."""
        await self._update(user_id, is_active=False)

    @rx.event
    async def enable_user(self, user_id: str):
        """Let a disabled account sign in again (its old sessions stay ended)."""
        await self._update(user_id, is_active=True)

    @rx.event
    def dismiss(self):
        """Hide the password shown once."""
        self.new_password = ""
