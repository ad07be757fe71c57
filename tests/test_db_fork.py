"""Pooled PostgreSQL connections: a forked process (an RQ work horse, a pool's worker) never uses
its parent's (two processes on one connection interleave their statements), and a connection
that died while idle in the pool is checked and replaced before use."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.db import engine_for


def backend_pid(engine) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_forked_child_opens_its_own_connection_and_leaves_the_parents_open(postgres_server):
    engine = engine_for(postgres_server.create_database("fork"))
    parent_backend = backend_pid(engine)  # the connection now waits in the pool
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.write(write, str(backend_pid(engine)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    child_backend = int(os.read(read, 32) or 0)
    os.close(read)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_backend and child_backend != parent_backend
    assert backend_pid(engine) == parent_backend  # the child's exit did not close it


def terminate(postgres_server, pid: int) -> None:  # noqa: ANN001
    """End one server process, as a server restart or a dropped connection would."""
    with postgres_server.connect() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} did not end"
            time.sleep(0.05)


def test_a_connection_that_died_idle_in_the_pool_is_checked_and_replaced(
    postgres_server, monkeypatch
):
    import app.db

    engine = engine_for(postgres_server.create_database("idle"))
    first = backend_pid(engine)
    terminate(postgres_server, first)
    monkeypatch.setattr(app.db, "PING_AFTER_IDLE_S", 3600.0)  # not idle long enough to check
    with pytest.raises(OperationalError):
        backend_pid(engine)  # the dead connection was handed out
    second = backend_pid(engine)  # that error emptied the pool
    terminate(postgres_server, second)
    monkeypatch.setattr(app.db, "PING_AFTER_IDLE_S", 0.0)
    assert backend_pid(engine) not in (first, second)  # checked, found dead, replaced: no error
