"""Migrations go up and down cleanly on SQLite and on PostgreSQL, and head matches the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers the tables)
from alembic import command
from app.settings import PROJECT_ROOT


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.set_main_option("sqlalchemy.url", url)
    return config


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request, tmp_path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("postgres_server").create_database("migrations")
    return f"sqlite:///{tmp_path / 'migrations.db'}"


def tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def enum_types(url: str) -> set[str]:
    """Named PostgreSQL enum types (a downgrade must drop them with their tables)."""
    if not url.startswith("postgresql"):
        return set()
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT typname FROM pg_type WHERE typtype = 'e'"))
            return set(rows.scalars())
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def schema_differences(url: str) -> list:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


def test_migrations_have_one_head_and_a_linear_history():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, script.get_heads()
    revisions = list(script.walk_revisions())
    assert revisions[-1].down_revision is None
    assert all(not rev.is_merge_point for rev in revisions)


def test_the_first_upgrade_makes_the_sqlite_files_directory(tmp_path):
    """A fresh checkout has no .taskdeck: `make run` migrates before anything else made it."""
    from app.db import upgrade_database

    database = tmp_path / "fresh" / ".taskdeck" / "taskdeck.db"
    upgrade_database(f"sqlite:///{database}")
    assert database.is_file()
    assert {"task", "attempt", "taskevent"} <= tables(f"sqlite:///{database}")


def test_upgrade_downgrade_upgrade_round_trip(empty_database):
    url = empty_database
    config = alembic_config(url)
    head = ScriptDirectory.from_config(config).get_current_head()

    command.upgrade(config, "head")
    assert current_revision(url) == head
    created = tables(url)
    assert {"task", "attempt", "taskevent"} <= created
    assert created == set(SQLModel.metadata.tables), "head's tables are not the models' tables"
    assert schema_differences(url) == [], "the migrations do not match app/models.py"

    command.downgrade(config, "base")
    assert current_revision(url) is None
    assert tables(url) == set(), "downgrade to base left tables behind"
    assert enum_types(url) == set(), "downgrade to base left enum types behind"

    command.upgrade(config, "head")
    assert current_revision(url) == head
    assert tables(url) == created


def test_each_revision_downgrades_one_step(empty_database):
    """Every single step down works from where the step up left it (not only base <-> head)."""
    url = empty_database
    config = alembic_config(url)
    script = ScriptDirectory.from_config(config)
    chain = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    for revision in chain:
        command.upgrade(config, revision)
        assert current_revision(url) == revision
    for revision in reversed(chain):
        assert current_revision(url) == revision
        command.downgrade(config, "-1")
    assert current_revision(url) is None
    assert tables(url) == set()


def test_processes_starting_together_on_postgres_migrate_one_at_a_time(postgres_server):
    """Workers and apps on many hosts all run `upgrade_database` at start (`python -m app.db`)."""
    import os
    import subprocess
    import sys

    url = postgres_server.create_database("together")
    env = {**os.environ, "TASKDECK_DATABASE_URL": url}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "app.db"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120)[0].decode() for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], outputs
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert current_revision(url) == head


def test_schedules_made_before_time_zones_stay_utc(empty_database):
    """0005 gives existing schedules the zone they always had (UTC); its downgrade drops it."""
    url = empty_database
    config = alembic_config(url)
    command.upgrade(config, "0004")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO schedule (name, template, cron, enabled, runs_count, created_at)"
                    " VALUES ('old', '{}', '0 3 * * *', true, 0, CURRENT_TIMESTAMP)"
                )
            )
        command.upgrade(config, "0005")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT timezone FROM schedule")).scalar_one() == "UTC"
        command.downgrade(config, "0004")
        columns = {c["name"] for c in inspect(engine).get_columns("schedule")}
        assert "timezone" not in columns and "cron" in columns
        with engine.connect() as conn:  # the row itself survives the way down
            assert conn.execute(text("SELECT name FROM schedule")).scalar_one() == "old"
    finally:
        engine.dispose()
