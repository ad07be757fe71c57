"""Accounts: argon2 password hashing, users, web sessions, scoped API tokens, per-token rate limit.

Secrets (passwords, session secrets, API tokens) are never stored, logged or returned after
creation: passwords are kept as argon2id hashes, session and API tokens (random, 256 bits) as
SHA-256 digests, which is enough for secrets that cannot be guessed and keeps each request's
check to one indexed lookup. The web UI and the REST API both authenticate through here.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from app.db import aware, session_scope
from app.models import ApiToken, Role, User, WebSession, utcnow
from app.queue import get_redis
from app.settings import get_settings

SCOPES = ("read", "write", "admin")
ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset(SCOPES),
    Role.MEMBER: frozenset({"read", "write"}),
    Role.VIEWER: frozenset({"read"}),
}
TOKEN_PREFIX = "tdk_"
SESSION_PREFIX = "tds_"
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{1,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 256
LAST_USED_EVERY = timedelta(seconds=60)  # write a token's last use at most this often
CACHE_TTL_S = 2.0  # a credential checked this recently is not looked up again (this process)
CACHE_MAX = 10_000

_hasher = PasswordHasher()
# Checked when the user does not exist, so a login takes as long either way (no user probing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """Bad account input (the message names the field); nothing was stored."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(LookupError):
    """No such user or token (for this caller)."""


class SelfLockout(ValueError):
    """An admin tried to demote or disable their own account (nobody could undo it)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling and what they may do: the role's scopes, narrowed by the token's."""

    user_id: int
    username: str
    role: str
    scopes: frozenset[str]
    via: str  # "token" or "session"
    credential_id: int  # the token's or the session's id (rate limit key)

    def allows(self, scope: str) -> bool:
        """Whether this caller holds `scope` (read, write, admin)."""
        return scope in self.scopes


def digest(secret: str) -> str:
    """SHA-256 hex of a random token (what the database keeps)."""
    return hashlib.sha256(secret.encode()).hexdigest()


# ----- credential cache ----------------------------------------------------------------------
# Each API request presents its credential: keep the answer of the database for CACHE_TTL_S, so
# a request costs one dict lookup. Revoking, signing out or changing a user here drops the
# entries at once; another process (a second server, the CLI) sees the change within CACHE_TTL_S.
_cache: dict[str, tuple[float, Principal]] = {}


def _cached(key: str) -> Principal | None:
    hit = _cache.get(key)
    if hit is None or time.monotonic() - hit[0] > CACHE_TTL_S:
        return None
    return hit[1]


def _remember(key: str, principal: Principal | None) -> Principal | None:
    if principal is not None:  # failures are not kept: garbage tokens must not fill memory
        if len(_cache) >= CACHE_MAX:
            _cache.clear()
        _cache[key] = (time.monotonic(), principal)
    return principal


def cached_principal(secret: str) -> Principal | None:
    """The caller of a token or session secret if checked in the last CACHE_TTL_S, else None."""
    return _cached(digest(secret)) if len(secret) <= 100 else None


def forget_credentials(
    user_id: int | None = None, via: str | None = None, credential_id: int | None = None
) -> None:
    """Drop cached credentials (all, one user's, or one token / session)."""
    for key, (_, p) in list(_cache.items()):
        if user_id is not None and p.user_id != user_id:
            continue
        if credential_id is not None and (p.via, p.credential_id) != (via, credential_id):
            continue
        _cache.pop(key, None)


# ----- passwords ------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    return _hasher.hash(password)


def check_password_rules(password: str) -> None:
    """Raise AccountError when a new password is too short or too long."""
    if len(password) < MIN_PASSWORD:
        raise AccountError("password", f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError("password", f"the password has more than {MAX_PASSWORD} characters")


# ----- users ----------------------------------------------------------------------------------


def create_user(username: str, password: str, role: str = Role.MEMBER) -> User:
    """Store a new account; AccountError names the field when the input is refused."""
    username = username.strip()
    if not USERNAME_PATTERN.match(username):
        raise AccountError(
            "username", "a username is 2-64 letters, digits or . _ - @, not starting with . _ - @"
        )
    if role not in Role.ALL:
        raise AccountError("role", f"the role must be one of {', '.join(Role.ALL)}")
    check_password_rules(password)
    user = User(username=username, password_hash=hash_password(password), role=role)
    try:
        with session_scope() as session:
            session.add(user)
    except IntegrityError as exc:
        raise AccountError("username", f"the username {username!r} is taken") from exc
    return user


def count_users() -> int:
    """How many accounts exist (0 on a fresh install)."""
    with session_scope() as session:
        return len(session.exec(select(User.id)).all())


def list_users() -> list[User]:
    """Every account, oldest first."""
    with session_scope() as session:
        return list(session.exec(select(User).order_by(col(User.id))))


def get_user(user_id: int) -> User:
    """One account, or NotFound."""
    with session_scope() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(user_id)
        return user


def update_user(
    user_id: int,
    role: str | None = None,
    is_active: bool | None = None,
    password: str | None = None,
    actor_id: int | None = None,
) -> User:
    """Change an account's role, active flag or password; a deactivated user's sessions end
    (and their tokens stop working: every check of a token reads the user's active flag).

    `actor_id` is the admin making the change: SelfLockout if they demote or disable themselves.
    """
    if user_id == actor_id and (is_active is False or role not in (None, Role.ADMIN)):
        raise SelfLockout("admins cannot demote or disable themselves")
    if role is not None and role not in Role.ALL:
        raise AccountError("role", f"the role must be one of {', '.join(Role.ALL)}")
    if password is not None:
        check_password_rules(password)
    with session_scope() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(user_id)
        if role is not None:
            user.role = role
        if is_active is not None:
            user.is_active = is_active
        if password is not None:
            user.password_hash = hash_password(password)
        session.add(user)
        if is_active is False or password is not None:
            session.exec(
                update(WebSession)
                .where(col(WebSession.user_id) == user_id, col(WebSession.revoked_at).is_(None))
                .values(revoked_at=utcnow())
            )
    forget_credentials(user_id=user_id)
    return user


def authenticate(username: str, password: str) -> User | None:
    """The active user with these credentials, or None (same time and answer for any failure)."""
    with session_scope() as session:
        user = session.exec(select(User).where(User.username == username.strip())).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        update_user(user.id, password=password)
    return user


# ----- web sessions ---------------------------------------------------------------------------


def start_session(user: User) -> tuple[str, datetime]:
    """Open a web session for a signed-in user: (secret for the cookie, expiry)."""
    secret = SESSION_PREFIX + secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(seconds=get_settings().session_ttl_s)
    with session_scope() as session:
        session.add(WebSession(user_id=user.id, token_hash=digest(secret), expires_at=expires))
        db_user = session.get(User, user.id)
        if db_user is not None:
            db_user.last_login_at = utcnow()
            session.add(db_user)
    return secret, expires


def login(username: str, password: str) -> tuple[User, str, datetime] | None:
    """Check the credentials and open a session: (user, cookie secret, expiry), or None."""
    user = authenticate(username, password)
    if user is None:
        return None
    secret, expires = start_session(user)
    return user, secret, expires


def end_session(secret: str) -> None:
    """Sign out: the session's secret stops working."""
    if not secret:
        return
    with session_scope() as session:
        session.exec(
            update(WebSession)
            .where(col(WebSession.token_hash) == digest(secret))
            .values(revoked_at=utcnow())
        )
    _cache.pop(digest(secret), None)


def session_principal(secret: str | None) -> Principal | None:
    """The caller of a live web session secret, or None (unknown, expired, revoked, inactive)."""
    if not secret or not secret.startswith(SESSION_PREFIX) or len(secret) > 100:
        return None
    key = digest(secret)
    if (hit := _cached(key)) is not None:
        return hit
    return _remember(key, _session_principal(key))


def _session_principal(key: str) -> Principal | None:
    with session_scope() as session:
        row = session.exec(
            select(WebSession, User)
            .join(User, col(User.id) == col(WebSession.user_id))
            .where(col(WebSession.token_hash) == key)
        ).first()
    if row is None:
        return None
    web, user = row
    if web.revoked_at is not None or aware(web.expires_at) <= utcnow() or not user.is_active:
        return None
    return Principal(user.id, user.username, user.role, ROLE_SCOPES[user.role], "session", web.id)


# ----- API tokens -----------------------------------------------------------------------------


def create_token(
    user: Principal | User,
    name: str,
    scopes: list[str] | None = None,
    expires_in_days: int | None = None,
) -> tuple[str, ApiToken]:
    """A new API token for a user: (the token, shown this once; its stored row).

    Scopes default to everything the role allows; asking for more than the role allows fails.
    """
    role_scopes = ROLE_SCOPES[user.role]
    wanted = list(dict.fromkeys(scopes)) if scopes else sorted(role_scopes)
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise AccountError("scopes", f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    beyond = [s for s in wanted if s not in role_scopes]
    if beyond:
        raise AccountError("scopes", f"a {user.role} cannot hold the {beyond[0]!r} scope")
    name = name.strip()
    if not name or len(name) > 100:
        raise AccountError("name", "a token needs a name of 1-100 characters")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user_id = user.user_id if isinstance(user, Principal) else user.id
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    token = ApiToken(
        user_id=user_id,
        name=name,
        prefix=secret[:12],
        token_hash=digest(secret),
        scopes=wanted,
        expires_at=expires,
    )
    with session_scope() as session:
        session.add(token)
    return secret, token


def list_tokens(user_id: int | None = None) -> list[ApiToken]:
    """Tokens of one user (or of everyone, for admins), newest first, revoked ones included."""
    query = select(ApiToken).order_by(col(ApiToken.id).desc())
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    with session_scope() as session:
        return list(session.exec(query))


def revoke_token(token_id: int, user_id: int | None = None) -> ApiToken:
    """Revoke a token (only the owner's unless `user_id` is None, for admins); NotFound else."""
    with session_scope() as session:
        token = session.get(ApiToken, token_id)
        if token is None or (user_id is not None and token.user_id != user_id):
            raise NotFound(token_id)
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            session.add(token)
    forget_credentials(via="token", credential_id=token_id)
    return token


def token_principal(secret: str | None) -> Principal | None:
    """The caller of a live API token, or None (unknown, expired, revoked, inactive user)."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    key = digest(secret)
    if (hit := _cached(key)) is not None:
        return hit
    return _remember(key, _token_principal(key))


def _token_principal(key: str) -> Principal | None:
    now = utcnow()
    with session_scope() as session:
        row = session.exec(
            select(
                ApiToken.id,
                ApiToken.scopes,
                ApiToken.expires_at,
                ApiToken.revoked_at,
                ApiToken.last_used_at,
                User.id,
                User.username,
                User.role,
                User.is_active,
            )
            .join(User, col(User.id) == col(ApiToken.user_id))
            .where(col(ApiToken.token_hash) == key)
        ).first()
        if row is None:
            return None
        token_id, scopes, expires, revoked, last_used, user_id, username, role, active = row
        if revoked is not None or not active or (expires and aware(expires) <= now):
            return None
        if last_used is None or aware(last_used) < now - LAST_USED_EVERY:
            session.exec(
                update(ApiToken).where(col(ApiToken.id) == token_id).values(last_used_at=now)
            )
    allowed = ROLE_SCOPES.get(role, frozenset()) & frozenset(scopes)
    return Principal(user_id, username, role, allowed, "token", token_id)


# ----- rate limit -----------------------------------------------------------------------------


def _window_key(key: str, now: float) -> tuple[str, int]:
    """The Redis counter of `key` in the current 60 s window, and the window's number."""
    window = int(now // 60)
    return f"taskdeck:ratelimit:{key}:{window}", window


def _retry_after(count: int, limit: int, window: int, now: float) -> float | None:
    """None while `count` is within `limit`, else the seconds until the window ends."""
    if count <= limit:
        return None
    return max(1.0, math.ceil((window + 1) * 60 - now))


def _count(key: str, limit: int, now: float | None) -> float | None:
    """Count one hit on `key`: None if within `limit` per minute, else the Retry-After."""
    if limit <= 0:
        return None
    now = time.time() if now is None else now
    full_key, window = _window_key(key, now)
    pipe = get_redis().pipeline(transaction=False)
    pipe.incr(full_key)
    pipe.expire(full_key, 120)
    return _retry_after(pipe.execute()[0], limit, window, now)


def check_rate_limit(principal: Principal, now: float | None = None) -> float | None:
    """Count one API request of a credential: None when allowed, else the seconds to wait."""
    key = f"{principal.via}:{principal.credential_id}"
    return _count(key, get_settings().api_rate_limit, now)


async def acheck_rate_limit(principal: Principal, now: float | None = None) -> float | None:
    """`check_rate_limit` on the asyncio Redis client (for the API's event loop)."""
    from app.live import async_redis

    limit = get_settings().api_rate_limit
    if limit <= 0:
        return None
    now = time.time() if now is None else now
    full_key, window = _window_key(f"{principal.via}:{principal.credential_id}", now)
    pipe = async_redis().pipeline(transaction=False)
    pipe.incr(full_key)
    pipe.expire(full_key, 120)
    return _retry_after((await pipe.execute())[0], limit, window, now)


def check_login_rate(client: str, limit: int, now: float | None = None) -> float | None:
    """Count one sign-in attempt from a client address (slows password guessing)."""
    return _count(f"login:{digest(client)[:16]}", limit, now)
