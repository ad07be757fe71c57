"""Reflex config (app_name="app"); reads the settings, nothing else."""

import reflex as rx

from app.radix_css import TaskdeckThemePlugin
from app.settings import get_settings

settings = get_settings()

config = rx.Config(
    app_name="app",
    frontend_port=settings.port,
    db_url=settings.database_url,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[TaskdeckThemePlugin(theme=rx.theme(accent_color="indigo", radius="medium"))],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
