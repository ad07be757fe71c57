"""The web process's one stream reader (app/live_hub.py), against a real redis-server: every
follower gets each entry after its position once and in order, however it joins, and one XREAD
serves many followers."""

from __future__ import annotations

import asyncio
import time

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from app import live_hub
from tests.conftest import RedisServer


def ids(entries) -> list[str]:  # noqa: ANN001
    return [entry_id.decode() for entry_id, _ in entries]


async def collect(feed: live_hub.Feed, count: int, timeout_s: float = 10.0) -> list[str]:
    """The ids of the next `count` entries of `feed` (its `decode` is `ids`; fails after
    `timeout_s`)."""
    got: list[str] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} entries came"
        got += await feed.next(timeout_s=0.5)
    return got


def test_every_follower_gets_each_entry_after_its_position_once_in_order(redis_server) -> None:
    sync = Redis.from_url(redis_server.url)
    sync.flushdb()
    before = [sync.xadd("s1", {"n": n}).decode() for n in range(5)]

    async def run() -> None:
        redis = AsyncRedis.from_url(redis_server.url)
        hub = live_hub.StreamHub(redis)
        written: list[str] = []

        async def write(count: int) -> None:
            for n in range(count):
                written.append((await redis.xadd("s1", {"n": n})).decode())
                await redis.xadd("s2", {"n": n})
                await asyncio.sleep(0.002)

        from_start = await hub.subscribe("s1", "0", ids)
        other = await hub.subscribe("s2", "$", ids)
        await write(20)
        await collect(from_start, 5 + 20)  # the hub has now read past the start of s1
        # Joins behind the hub's position: caught up from Redis, then fed by the hub.
        late = await hub.subscribe("s1", before[2], ids)
        # Joins at the end: only what comes after.
        newest = await hub.subscribe("s1", "$", ids)
        await write(30)
        assert await collect(late, 2 + 20 + 30) == before[3:] + written
        assert await collect(newest, 30) == written[20:]
        assert await collect(other, 50) == ids(await redis.xrange("s2"))
        for feed in (from_start, other, late, newest):
            hub.unsubscribe(feed)
        await redis.aclose()

    asyncio.run(run())


def test_a_new_stream_is_read_at_once_while_the_reader_waits(redis_server) -> None:
    """The reader blocks in XREAD for BLOCK_MS (5 s); a follower of another stream wakes it."""
    Redis.from_url(redis_server.url).flushdb()

    async def run() -> None:
        redis = AsyncRedis.from_url(redis_server.url)
        async with live_hub.follow(redis, "quiet", "$", ids):
            await asyncio.sleep(0.3)  # the reader is now blocked on "quiet" alone
            async with live_hub.follow(redis, "busy", "$", ids) as feed:
                started = time.monotonic()
                await redis.xadd("busy", {"n": 1})
                assert len(await feed.next(timeout_s=3.0)) == 1
                assert time.monotonic() - started < 0.5
        await redis.aclose()

    asyncio.run(run())


def test_one_read_serves_many_followers(redis_server) -> None:
    Redis.from_url(redis_server.url).flushdb()

    async def run() -> None:
        redis = AsyncRedis.from_url(redis_server.url, client_name="hub-test")
        hub = live_hub.StreamHub(redis)
        feeds = [await hub.subscribe(f"task:{n}", "$", ids) for n in range(10)]
        await asyncio.sleep(0.3)
        reads = hub.reads
        pipe = redis.pipeline(transaction=False)
        for n in range(10):
            pipe.xadd(f"task:{n}", {"n": n})
        await pipe.execute()
        for feed in feeds:
            assert len(await collect(feed, 1)) == 1
        assert hub.reads - reads <= 2  # one XREAD for all ten (two if it came between)
        # The ten followers hold one connection between them (plus the one of this test's own
        # commands).
        ours = [c for c in await redis.client_list() if c["name"] == "hub-test"]
        assert len(ours) <= 2
        for feed in feeds:
            hub.unsubscribe(feed)
        await redis.aclose()

    asyncio.run(run())


def test_the_reader_stops_when_nothing_is_followed(redis_server, monkeypatch) -> None:
    Redis.from_url(redis_server.url).flushdb()
    monkeypatch.setattr(live_hub, "BLOCK_MS", 200)

    async def run() -> None:
        redis = AsyncRedis.from_url(redis_server.url)
        hub = live_hub.StreamHub(redis)
        feed = await hub.subscribe("s", "$", ids)
        reader = hub._reader
        hub.unsubscribe(feed)
        assert hub.positions == {} and hub.feeds == {}
        await redis.xadd("s", {"n": 1})  # nobody follows it: not handed out, no error
        await asyncio.wait_for(reader, 2.0)
        assert hub._reader is None
        # Following again starts a new reader.
        again = await hub.subscribe("s", "0", ids)
        assert await collect(again, 1) == ids(await redis.xrange("s"))
        hub.unsubscribe(again)
        await redis.aclose()

    asyncio.run(run())


def test_followers_lose_nothing_across_a_redis_restart(tmp_path, monkeypatch) -> None:
    """Redis goes away and comes back (append-only file kept): the reader retries, and every
    entry after each follower's position arrives once."""
    monkeypatch.setattr(live_hub, "RETRY_S", 0.2)
    server = RedisServer(tmp_path, appendonly=True).start()
    try:

        async def run() -> None:
            redis = AsyncRedis.from_url(server.url)
            feed = await live_hub.StreamHub(redis).subscribe("s", "$", ids)
            first = [(await redis.xadd("s", {"n": n})).decode() for n in range(3)]
            assert await collect(feed, 3) == first
            await asyncio.to_thread(server.restart)
            later = [(await redis.xadd("s", {"n": n})).decode() for n in range(3)]
            assert await collect(feed, 3) == later
            await redis.aclose()

        asyncio.run(run())
    finally:
        server.stop()


def test_followers_coming_and_going_each_get_exactly_their_entries(redis_server) -> None:
    """Many followers join (at the start, at the end, behind the reader) and leave, on a few
    streams, while entries are written: each gets exactly the entries after its position."""
    import random

    Redis.from_url(redis_server.url).flushdb()
    rng = random.Random(7)

    async def run() -> None:
        redis = AsyncRedis.from_url(redis_server.url)
        streams = ["a", "b", "c"]
        done = asyncio.Event()
        received: list[int] = []

        async def write() -> None:
            for n in range(300):
                await redis.xadd(rng.choice(streams), {"n": n})
                await asyncio.sleep(rng.choice([0, 0, 0.001, 0.005]))
            done.set()

        async def follower(number: int) -> None:
            await asyncio.sleep(rng.random() * 0.8)
            stream = rng.choice(streams)
            existing = ids(await redis.xrange(stream))
            start = rng.choice(["0", "$", *(existing[-5:] or ["0"])])
            async with live_hub.follow(redis, stream, start, ids) as feed:
                # Where it began: `feed.after` moves on with each entry it is handed (some may
                # have come while it subscribed), `feed.start` stays.
                after = feed.start
                if start != "$":
                    assert after == live_hub.entry_id(start)
                got: list[str] = []
                for _ in range(rng.randint(1, 20)):
                    got += await feed.next(timeout_s=0.05)
            received.append(len(got))
            # Gone: what it got is the start of what it was owed, nothing missed or twice.
            owed = [i for i in ids(await redis.xrange(stream)) if live_hub.entry_id(i) > after]
            assert got == owed[: len(got)], (number, stream, start)

        await asyncio.gather(write(), *(follower(n) for n in range(60)))
        await done.wait()
        assert sum(received) > 300  # they did follow (most got many entries)
        hub = live_hub.hub(redis)
        assert hub.feeds == {} and hub.positions == {}  # all gone: nothing is read any more
        await redis.aclose()

    asyncio.run(run())


def test_an_entry_this_version_cannot_read_is_skipped_and_the_follower_goes_on(
    redis_server, monkeypatch, caplog
) -> None:
    """A newer worker's new kind of event (a rolling upgrade), or any entry that is not an
    event, is logged without its content and skipped: the task page's follower gets the events
    before and after it, and does not stop."""
    from app import live
    from app.events import TextEvent
    from app.settings import get_settings

    monkeypatch.setenv("TASKDECK_REDIS_URL", redis_server.url)
    get_settings.cache_clear()
    sync = Redis.from_url(redis_server.url)
    sync.flushdb()
    stream = live.task_stream(7)

    async def run() -> list[str]:
        async with live.follow_task(7, "0") as feed:
            live.publish(7, TextEvent(text="before"), sync)
            sync.xadd(stream, {"e": '{"type": "hologram", "secret": "sk-not-for-logs"}'})
            sync.xadd(stream, {"other": "field"})
            live.publish(7, TextEvent(text="after"), sync)
            texts: list[str] = []
            deadline = time.monotonic() + 10
            while len(texts) < 2 and time.monotonic() < deadline:
                texts += [event.text for _, event in await feed.next(timeout_s=0.5)]
            return texts

    try:
        with caplog.at_level("WARNING", logger="app.live"):
            assert asyncio.run(run()) == ["before", "after"]
    finally:
        get_settings.cache_clear()
    skipped = [r.getMessage() for r in caplog.records if "skipped stream entry" in r.getMessage()]
    assert len(skipped) == 2, skipped
    assert not any("sk-not-for-logs" in message for message in skipped)
