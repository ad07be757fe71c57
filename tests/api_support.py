"""Fixtures for the REST API tests: the API in-process (FastAPI TestClient on create_api(), with
the real Redis and SQLite of the `env` fixture) and one account per role with its API token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


@dataclass
class Account:
    username: str
    role: str
    user_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def api(env) -> Iterator[TestClient]:
    from app.api import create_api

    with TestClient(create_api(), base_url="http://testserver") as client:
        yield client


@pytest.fixture
def accounts(env) -> dict[str, Account]:
    """admin, member and viewer accounts (password PASSWORD), each with a full-scope token."""
    from app import auth

    out = {}
    for role in ("admin", "member", "viewer"):
        user = auth.create_user(f"{role}-user", PASSWORD, role)
        secret, _ = auth.create_token(user, f"{role} token")
        out[role] = Account(user.username, role, user.id, secret)
    return out
