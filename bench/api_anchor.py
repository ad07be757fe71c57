"""The naive anchor of bench/api_load.py: a bare FastAPI app on the same rows, no auth, doing what
a first version would do (`select(Task)` -> list of SQLModel objects, serialized by FastAPI)."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlmodel import Session, col, select

from app.db import get_engine
from app.models import Task


class AnchorCreate(BaseModel):
    prompt: str


def create_anchor() -> FastAPI:
    """The anchor app (a granian factory)."""
    api = FastAPI()

    @api.get("/anchor/tasks")
    def list_tasks(limit: int = 50):  # noqa: ANN202
        with Session(get_engine()) as session:
            return session.exec(select(Task).order_by(col(Task.id).desc()).limit(limit)).all()

    @api.get("/anchor/tasks/{task_id}")
    def get_task(task_id: int):  # noqa: ANN202
        with Session(get_engine()) as session:
            task = session.get(Task, task_id)
            if task is None:
                raise HTTPException(404)
            return task

    @api.post("/anchor/tasks", status_code=201)
    def create_task(body: AnchorCreate):  # noqa: ANN202
        task = Task(title=body.prompt[:100], prompt=body.prompt, model="m", max_turns=5)
        with Session(get_engine()) as session:
            session.add(task)
            session.commit()
            session.refresh(task)
            return task

    return api
