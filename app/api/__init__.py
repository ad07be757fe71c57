"""The REST API: FastAPI routers mounted on the Reflex backend under /api/v1."""

from __future__ import annotations

from fastapi import FastAPI

from app.api.tasks import router as tasks_router


def create_api() -> FastAPI:
    """The FastAPI app Reflex serves beside its own routes."""
    api = FastAPI(
        title="Taskdeck API",
        version="1",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    api.include_router(tasks_router)
    return api
