"""Every endpoint of /api/v1/openapi.json fuzzed with schemathesis (in-process, real Redis and
SQLite, signed in as an admin): whatever the input, no answer is a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from app.api import create_api

pytest_plugins = ["tests.api_support"]

# The schema and the app do not depend on the database: the `fuzz_env` fixture below points the
# settings (read per request) at this test's own SQLite file and Redis.
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_api())


@pytest.fixture
def admin_headers(env, accounts, monkeypatch) -> dict[str, str]:
    from app.settings import get_settings

    monkeypatch.setenv("TASKDECK_API_RATE_LIMIT", "0")  # fuzz the handlers, not the limiter
    get_settings.cache_clear()
    return accounts["admin"].headers


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_endpoint_answers_a_server_error(case, admin_headers):
    if case.path.endswith("/events/stream"):  # a live stream: bound it, as a client would
        case.query = {**(case.query or {}), "max_s": 0.2}
    response = case.call(headers=admin_headers)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
