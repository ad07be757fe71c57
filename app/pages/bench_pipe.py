"""The bare pipe of bench/live_latency.py: a Redis stream read by a minimal Reflex background
event that only sets one text. Registered only when TASKDECK_BENCH_PAGES=1 (the benchmark sets
it), so it measures what the stack itself costs, next to the task page's full path."""

from __future__ import annotations

import reflex as rx

from app.live import async_redis
from app.state.base import client_connected


def pipe_stream(n: int) -> str:
    """The Redis stream the bare-pipe page number `n` reads."""
    return f"taskdeck:bench:pipe:{n}"


class PipeState(rx.State):
    """Reads one stream and shows the newest entry's text; nothing else."""

    text: str = ""

    @rx.event(background=True)
    async def follow(self):
        async with self:
            n = int(self.router.url.path.rstrip("/").rsplit("/", 1)[-1])
            token = self.router.session.client_token
        after = "$"
        while client_connected(token):
            result = await async_redis().xread({pipe_stream(n): after}, count=100, block=1000)
            if not result:
                continue
            entries = result[0][1]
            after = entries[-1][0]
            async with self:
                self.text = entries[-1][1][b"e"].decode()


def bench_pipe_page() -> rx.Component:
    return rx.box(rx.text(PipeState.text, id="pipe-text"), on_mount=PipeState.follow)
