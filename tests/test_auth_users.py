"""Account administration as the users page and /api/v1/users do it (app.auth, real SQLite and
Redis): a disabled account's sessions and tokens stop working and it cannot sign in, enabling it
lets it sign in again, an admin cannot lock themselves out, and a credential cached for speed
still stops working within CACHE_TTL_S when another process revokes it."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

from app import auth
from app.db import session_scope
from app.models import ApiToken, utcnow

PASSWORD = "users-test-password"


@pytest.fixture
def member(env) -> auth.User:
    return auth.create_user("managed-member", PASSWORD, "member")


def test_disabling_ends_sessions_and_tokens_and_enabling_lets_the_user_back(member):
    session_secret, _ = auth.start_session(member)
    token, _ = auth.create_token(member, "ci")
    assert auth.session_principal(session_secret) is not None  # both cached now
    assert auth.token_principal(token).scopes == {"read", "write"}

    disabled = auth.update_user(member.id, is_active=False)
    assert not disabled.is_active
    assert auth.session_principal(session_secret) is None
    assert auth.token_principal(token) is None
    assert auth.cached_principal(token) is None
    assert auth.login("managed-member", PASSWORD) is None

    auth.update_user(member.id, is_active=True)
    assert auth.token_principal(token) is not None
    assert auth.session_principal(session_secret) is None  # an ended session stays ended
    assert auth.login("managed-member", PASSWORD) is not None


def test_a_role_change_applies_to_the_users_tokens(member):
    token, _ = auth.create_token(member, "ci")
    assert auth.token_principal(token).allows("write")
    auth.update_user(member.id, role="viewer")
    principal = auth.token_principal(token)
    assert principal.role == "viewer" and principal.scopes == {"read"}


def test_create_user_names_the_refused_field(env):
    for username, password, role, field in (
        (".dot-first", PASSWORD, "member", "username"),
        ("ok-name", "short", "member", "password"),
        ("ok-name", PASSWORD, "owner", "role"),
    ):
        with pytest.raises(auth.AccountError) as refused:
            auth.create_user(username, password, role)
        assert refused.value.field == field
        assert password not in str(refused.value)
    auth.create_user("ok-name", PASSWORD)
    with pytest.raises(auth.AccountError) as taken:
        auth.create_user("ok-name", PASSWORD)
    assert taken.value.field == "username"
    assert [u.username for u in auth.list_users()] == ["ok-name"]


def test_an_admin_cannot_demote_or_disable_themselves(env):
    admin = auth.create_user("the-admin", PASSWORD, "admin")
    for change in ({"role": "member"}, {"is_active": False}):
        with pytest.raises(auth.SelfLockout):
            auth.update_user(admin.id, actor_id=admin.id, **change)
    assert auth.get_user(admin.id).role == "admin" and auth.get_user(admin.id).is_active
    other = auth.create_user("other-admin", PASSWORD, "admin")
    assert auth.update_user(other.id, role="member", actor_id=admin.id).role == "member"


def test_a_revocation_by_another_process_takes_effect_within_the_cache_ttl(member):
    token, row = auth.create_token(member, "ci")
    assert auth.token_principal(token) is not None  # now cached in this process
    with session_scope() as session:  # as a second server process would revoke it
        session.exec(update(ApiToken).where(ApiToken.id == row.id).values(revoked_at=utcnow()))
    assert auth.CACHE_TTL_S <= 2.0
    deadline = time.monotonic() + auth.CACHE_TTL_S + 0.5
    while auth.token_principal(token) is not None:
        assert time.monotonic() < deadline, "the revoked token still works"
        time.sleep(0.05)
