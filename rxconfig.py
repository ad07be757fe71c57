"""Reflex config (app_name="app"); reads the settings, nothing else."""

import os

import reflex as rx

from app.radix_css import TaskdeckThemePlugin
from app.settings import get_settings

settings = get_settings()

# One app process (no REFLEX_REDIS_URL): the UI state lives in memory. Reflex's default there,
# the disk manager, pickles every changed tab's state into .states/ every 2 s and stats every
# file in that directory on each pass, in the event loop the live pages share. A browser that
# reconnects after a restart hydrates in full, so nothing depends on the pickles. With
# REFLEX_REDIS_URL, Reflex picks its Redis manager (docs/deployment.md).
state_manager = {} if os.environ.get("REFLEX_REDIS_URL") else {"state_manager_mode": "memory"}

config = rx.Config(
    app_name="app",
    frontend_port=settings.port,
    db_url=settings.database_url,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[TaskdeckThemePlugin(theme=rx.theme(accent_color="indigo", radius="medium"))],
    disable_plugins=[rx.plugins.SitemapPlugin],
    **state_manager,
)
