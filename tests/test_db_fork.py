"""A forked process (an RQ work horse, a pool's worker) never uses its parent's pooled database
connections: two processes on one PostgreSQL connection interleave their statements."""

from __future__ import annotations

import os

from sqlalchemy import text

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
