"""The live hub (app/live_hub.py) against a real Redis: one read serves every followed stream,
each follower gets its own stream's entries after its own position, once, in order."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis import Redis

from app import live
from app.events import TextEvent
from app.live_hub import LiveHub


@pytest.fixture
def redis_url(redis_server, monkeypatch):
    from app.settings import get_settings

    Redis.from_url(redis_server.url).flushdb()
    monkeypatch.setenv("TASKDECK_REDIS_URL", redis_server.url)
    get_settings.cache_clear()
    yield redis_server.url
    get_settings.cache_clear()


def say(task_id: int, text: str) -> str:
    return live.publish(task_id, TextEvent(attempt=1, text=text))


async def texts(follower, count: int, timeout_s: float = 5.0) -> list[str]:
    """The texts of the next `count` entries the follower gets (fewer if time runs out)."""
    out: list[str] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < deadline:
        out += [event.text for _, event in await follower.read(timeout_s=0.2)]
    return out


def test_each_follower_gets_its_own_stream_after_its_own_position(redis_url):
    early = say(1, "before")  # on the stream before anyone follows

    async def scenario() -> None:
        hub = LiveHub()
        one, two = hub.follow(1, "0"), hub.follow(2, "0")
        assert await texts(one, 1) == ["before"]  # from its position, not from "now"
        for n in range(5):
            say(1, f"one {n}")
            say(2, f"two {n}")
        assert await texts(one, 5) == [f"one {n}" for n in range(5)]
        assert await texts(two, 5) == [f"two {n}" for n in range(5)]
        # A second page on stream 1, from an older position than the first follower's: it
        # gets what it has not seen, the first follower nothing twice.
        late = hub.follow(1, early)
        assert await texts(late, 5) == [f"one {n}" for n in range(5)]
        say(1, "after")
        assert await texts(late, 1) == ["after"]
        assert await texts(one, 1) == ["after"]
        assert await one.read(timeout_s=0.3) == []  # nothing twice
        for follower in (one, two, late):
            follower.leave()
        await asyncio.sleep(1.5)  # the reader stops once nobody follows
        assert hub._reader is not None and hub._reader.done()

    asyncio.run(scenario())


def test_a_new_follower_is_read_at_once_while_the_reader_waits(redis_url):
    async def scenario() -> float:
        hub = LiveHub()
        first = hub.follow(1, "0")
        await first.read(timeout_s=0.3)  # the reader is now blocked on stream 1 only
        second = hub.follow(2, "0")
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await asyncio.to_thread(say, 2, "hello")
        assert await texts(second, 1) == ["hello"]
        first.leave()
        second.leave()
        return time.monotonic() - started

    # without the wake-up the reader would still be blocked on stream 1 for up to a second
    assert asyncio.run(scenario()) < 0.5


def test_one_read_per_tick_serves_every_follower(redis_url):
    """10 pages following 10 tasks, 20 ticks of one event each: about one XREAD per tick for
    all of them, where a read per page made it ten."""
    redis = Redis.from_url(redis_url)

    def xreads() -> int:
        stats = redis.info("commandstats").get("cmdstat_xread", {})
        return int(stats.get("calls", 0))

    async def scenario() -> int:
        hub = LiveHub()
        followers = [hub.follow(task_id, "0") for task_id in range(10)]
        await asyncio.sleep(0.3)
        before = xreads()
        for tick in range(20):
            redis_pipe = redis.pipeline(transaction=False)
            for task_id in range(10):
                live.publish_on(redis_pipe, task_id, TextEvent(attempt=1, text=f"{tick}"))
            redis_pipe.execute()
            got = await asyncio.gather(*(texts(f, 1) for f in followers))
            assert got == [[f"{tick}"]] * 10
        reads = xreads() - before
        for follower in followers:
            follower.leave()
        return reads

    reads = asyncio.run(scenario())
    assert reads <= 20 * 2 + 2, reads
