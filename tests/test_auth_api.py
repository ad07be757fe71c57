"""Accounts at the API door: 401 vs 403, roles and scopes, sessions, tokens, rate limit, secrets."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from app import auth
from app.db import session_scope
from app.models import WebSession, utcnow
from tests.api_support import PASSWORD

pytest_plugins = ["tests.api_support"]

UNAUTHENTICATED = "not authenticated: send a valid API token (Authorization: Bearer ...) or sign in"


def _fresh_window() -> None:
    """The limiter counts per clock minute: start a burst well inside one."""
    left = 60 - time.time() % 60
    if left < 8:
        time.sleep(left + 0.1)


def _login(api, username: str, password: str = PASSWORD):
    return api.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_every_endpoint_but_health_and_login_needs_a_credential(api, env):
    schema = api.get("/api/v1/openapi.json").json()
    open_paths = {
        "/api/v1/health",
        "/api/v1/health/live",
        "/api/v1/health/ready",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
    }
    checked = 0
    for path, operations in schema["paths"].items():
        if path in open_paths:
            continue
        url = path.replace("{task_id}", "1").replace("{token_id}", "1").replace("{user_id}", "1")
        url = url.replace("{priority}", "default").replace("{schedule_id}", "1")
        for method in operations:
            response = api.request(method.upper(), url)
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["detail"] == UNAUTHENTICATED
            assert response.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 15


def test_401_is_the_same_for_unknown_revoked_and_malformed_tokens(api, accounts):
    member = accounts["member"]
    token_id = auth.list_tokens(member.user_id)[0].id
    auth.revoke_token(token_id)
    answers = set()
    for token in ("tdk_nosuchtoken", member.token, "garbage", "tdk_" + "x" * 500):
        response = api.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        answers.add(response.text)
    assert len(answers) == 1


def test_viewer_reads_but_cannot_submit_or_cancel(api, accounts):
    viewer, member = accounts["viewer"].headers, accounts["member"].headers
    task = api.post("/api/v1/tasks", json={"prompt": "hi"}, headers=member).json()
    assert api.get("/api/v1/tasks", headers=viewer).status_code == 200
    assert api.get(f"/api/v1/tasks/{task['id']}", headers=viewer).status_code == 200
    for method, url, body in (
        ("POST", "/api/v1/tasks", {"prompt": "hi"}),
        ("POST", f"/api/v1/tasks/{task['id']}/cancel", None),
        ("POST", f"/api/v1/tasks/{task['id']}/retry", None),
        ("DELETE", f"/api/v1/tasks/{task['id']}", None),
        ("POST", "/api/v1/tasks/bulk", {"action": "cancel", "task_ids": [task["id"]]}),
    ):
        response = api.request(method, url, json=body, headers=viewer)
        assert response.status_code == 403, (url, response.text)
        assert "'write' permission" in response.json()["detail"]
    assert api.get(f"/api/v1/tasks/{task['id']}", headers=member).json()["status"] == "queued"


def test_only_admins_manage_users(api, accounts):
    member = accounts["member"].headers
    assert api.get("/api/v1/users", headers=member).status_code == 403
    new = {"username": "newbie", "password": "long enough pw", "role": "viewer"}
    assert api.post("/api/v1/users", json=new, headers=member).status_code == 403
    admin = accounts["admin"].headers
    created = api.post("/api/v1/users", json=new, headers=admin)
    assert created.status_code == 201 and created.json()["role"] == "viewer"
    assert "password" not in created.text and "long enough pw" not in created.text
    taken = api.post("/api/v1/users", json=new, headers=admin)
    assert taken.status_code == 422 and taken.json()["detail"][0]["loc"] == ["body", "username"]
    short = api.post(
        "/api/v1/users", json={**new, "username": "x2", "password": "Zq7#"}, headers=admin
    )
    assert short.status_code == 422 and short.json()["detail"][0]["loc"] == ["body", "password"]
    assert "Zq7#" not in short.text
    user_id = created.json()["id"]
    promoted = api.patch(f"/api/v1/users/{user_id}", json={"role": "member"}, headers=admin)
    assert promoted.json()["role"] == "member"
    admin_id = accounts["admin"].user_id
    selfish = api.patch(f"/api/v1/users/{admin_id}", json={"role": "viewer"}, headers=admin)
    assert selfish.status_code == 409


def test_login_sets_an_httponly_cookie_and_logout_ends_the_session(api, accounts):
    response = _login(api, "member-user")
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "member-user" and body["user"]["role"] == "member"
    cookie = response.headers["set-cookie"]
    assert "taskdeck_api_session=tds_" in cookie and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    secret = response.cookies["taskdeck_api_session"]
    assert secret not in response.text  # the secret travels in the cookie only

    me = api.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["via"] == "session"
    assert me.json()["scopes"] == ["read", "write"]
    assert api.post("/api/v1/tasks", json={"prompt": "from the browser"}).status_code == 201

    assert api.post("/api/v1/auth/logout").status_code == 204
    api.cookies.set("taskdeck_api_session", secret)  # an old cookie kept by the client is dead
    assert api.get("/api/v1/auth/me").status_code == 401


def test_a_session_cookie_cannot_write_from_another_origin(api, accounts):
    _login(api, "member-user")
    foreign = api.post(
        "/api/v1/tasks", json={"prompt": "csrf"}, headers={"Origin": "http://evil.example"}
    )
    assert foreign.status_code == 403
    same = api.post("/api/v1/tasks", json={"prompt": "ok"}, headers={"Origin": "http://testserver"})
    assert same.status_code == 201


def test_wrong_password_and_unknown_user_get_the_same_answer(api, accounts):
    wrong = _login(api, "member-user", "not the password")
    unknown = _login(api, "nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "invalid username or password"}
    assert "set-cookie" not in wrong.headers
    auth.update_user(accounts["viewer"].user_id, is_active=False)
    disabled = _login(api, "viewer-user")
    assert disabled.status_code == 401 and disabled.json() == wrong.json()


def test_an_expired_session_is_refused(api, accounts):
    _login(api, "member-user")
    assert api.get("/api/v1/auth/me").status_code == 200
    with session_scope() as session:
        session.exec(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    auth.forget_credentials()  # as CACHE_TTL_S passing would (the expiry was written behind it)
    assert api.get("/api/v1/auth/me").status_code == 401


def _stored_bytes(url: str) -> bytes:
    """What the database holds: the SQLite file and its WAL, or on PostgreSQL every row of the
    account tables as text."""
    if url.startswith("sqlite:///"):
        database = url.removeprefix("sqlite:///")
        return open(database, "rb").read() + open(database + "-wal", "rb").read()
    from sqlalchemy import text

    from app.models import ApiToken, User

    with session_scope() as session:
        rows = [
            row
            for table in (User.__tablename__, ApiToken.__tablename__)
            for row in session.exec(text(f'SELECT * FROM "{table}"')).all()
        ]
    return "\n".join(str(tuple(row)) for row in rows).encode()


def test_tokens_are_shown_once_stored_hashed_and_revocable(api, accounts, env):
    _login(api, "member-user")
    created = api.post("/api/v1/tokens", json={"name": "ci", "scopes": ["read"]})
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("tdk_") and created.json()["prefix"] == token[:12]

    listed = api.get("/api/v1/tokens")
    assert token not in listed.text and "token_hash" not in listed.text
    assert [t["name"] for t in listed.json()] == ["ci", "member token"]
    raw = _stored_bytes(env["TASKDECK_DATABASE_URL"])
    assert token.encode() not in raw and auth.digest(token).encode() in raw
    assert PASSWORD.encode() not in raw

    reader = {"Authorization": f"Bearer {token}"}
    api.cookies.clear()
    assert api.get("/api/v1/tasks", headers=reader).status_code == 200
    refused = api.post("/api/v1/tasks", json={"prompt": "hi"}, headers=reader)
    assert refused.status_code == 403  # a read-only token of a member cannot submit
    assert api.post("/api/v1/tokens", json={"name": "x"}, headers=reader).status_code == 403

    token_id = created.json()["id"]
    viewer = accounts["viewer"].headers
    assert api.delete(f"/api/v1/tokens/{token_id}", headers=viewer).status_code == 404
    assert (
        api.delete(f"/api/v1/tokens/{token_id}", headers=accounts["member"].headers).status_code
        == 204
    )
    assert api.get("/api/v1/tasks", headers=reader).status_code == 401


def test_a_token_cannot_get_more_scopes_than_its_role(api, accounts):
    _login(api, "viewer-user")
    refused = api.post("/api/v1/tokens", json={"name": "sneaky", "scopes": ["write"]})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "scopes"]
    assert "viewer cannot hold the 'write' scope" in refused.json()["detail"][0]["msg"]
    # A demoted user's old token loses what the new role does not allow.
    auth.update_user(accounts["member"].user_id, role="viewer")
    demoted = api.post("/api/v1/tasks", json={"prompt": "hi"}, headers=accounts["member"].headers)
    assert demoted.status_code == 403


def test_rate_limit_answers_429_with_retry_after(api, accounts, monkeypatch):
    from app.settings import get_settings

    monkeypatch.setenv("TASKDECK_API_RATE_LIMIT", "5")
    get_settings.cache_clear()
    member, viewer = accounts["member"].headers, accounts["viewer"].headers
    _fresh_window()
    codes = [api.get("/api/v1/tasks", headers=member).status_code for _ in range(7)]
    assert codes == [200] * 5 + [429] * 2
    limited = api.get("/api/v1/tasks", headers=member)
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert api.get("/api/v1/tasks", headers=viewer).status_code == 200  # per token


def test_too_many_sign_in_attempts_are_slowed_down(api, accounts):
    _fresh_window()
    codes = [_login(api, "member-user", "guess number x").status_code for _ in range(11)]
    assert codes == [401] * 10 + [429], codes
    assert _login(api, "member-user").status_code == 429


@pytest.mark.parametrize("level", [logging.DEBUG])
def test_no_secret_reaches_a_log_line_or_an_event(api, accounts, caplog, level):
    from app import service

    caplog.set_level(level)
    _login(api, "member-user")
    _login(api, "member-user", "wrong-password-123")
    created = api.post("/api/v1/tokens", json={"name": "logged?"}).json()
    task = api.post(
        "/api/v1/tasks",
        json={"prompt": "hi"},
        headers={"Authorization": f"Bearer {created['token']}"},
    ).json()
    secrets_seen = [PASSWORD, "wrong-password-123", created["token"], accounts["member"].token]
    text = caplog.text + "".join(str(e.data) for e in service.list_events(task["id"]))
    for secret in secrets_seen:
        assert secret not in text


def test_an_expired_token_is_refused(api, accounts):
    from app.models import ApiToken

    _login(api, "member-user")
    created = api.post("/api/v1/tokens", json={"name": "short-lived", "expires_in_days": 1}).json()
    assert created["expires_at"] is not None
    api.cookies.clear()
    bearer = {"Authorization": f"Bearer {created['token']}"}
    assert api.get("/api/v1/tasks", headers=bearer).status_code == 200
    with session_scope() as session:
        session.exec(
            update(ApiToken)
            .where(ApiToken.id == created["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    auth.forget_credentials()  # as CACHE_TTL_S passing would
    assert api.get("/api/v1/tasks", headers=bearer).status_code == 401


def test_the_web_ui_session_cookie_also_opens_the_api(api, accounts):
    secret, _ = auth.start_session(auth.get_user(accounts["viewer"].user_id))
    api.cookies.set("taskdeck_session", secret)  # what the UI's login sets in the browser
    me = api.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["user"]["username"] == "viewer-user"
    assert api.post("/api/v1/auth/logout").status_code == 204
    assert api.get("/api/v1/auth/me").status_code == 401
