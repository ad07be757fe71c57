"""One blocking XREAD per web process for every Redis stream its open pages and API streams follow.

A follower (a task page, the dashboard, an SSE client) subscribes to a stream from a position
and gets a `Feed`: `await feed.next(timeout_s)` returns the entries after its position, in order,
none missed and none twice. The hub (one per Redis client, so one per event loop) reads every
followed stream in one `XREAD BLOCK` and hands each feed the entries it has not seen: ten tabs on
ten tasks cost one Redis connection and one round trip per burst of events, not ten of each.

Each hub also reads a wake stream of its own (`taskdeck:hub:wake:{uuid}`): a subscription to a
stream the hub does not read yet adds an entry to it, so the blocked XREAD returns at once and
the next one includes the new stream. A follower that starts behind the hub's position on a
stream (the hub already read past it for another follower) is caught up with one XRANGE first.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)

BLOCK_MS = 5_000  # how long one XREAD waits; a new stream wakes it earlier
COUNT = 500  # entries per stream and read
WAKE_TTL_S = 3_600  # the wake stream expires if its hub is gone
RETRY_S = 1.0  # pause after a failed read (Redis restarting)


def entry_id(value: bytes | str) -> tuple[int, int]:
    """A stream id ("ms-seq") as a pair of ints, for ordering."""
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def id_text(value: tuple[int, int]) -> str:
    return f"{value[0]}-{value[1]}"


class Feed:
    """One follower's entries of one stream, after its position; `decode` turns each raw
    (id, fields) entry into what the follower wants."""

    def __init__(
        self, stream: str, after: tuple[int, int], decode: Callable, hub: StreamHub
    ) -> None:
        self.stream = stream
        self._hub = hub
        self.start = after  # the position it began after (fixed; `after` moves on)
        self.after = after  # the last entry it has taken
        self._decode = decode
        self._entries: list = []
        self._ready = asyncio.Event()
        self._held: list | None = None  # entries that came while the feed was catching up

    def offer(self, entries: list) -> None:
        """Take the entries (raw, in stream order) this feed has not seen yet."""
        if self._held is not None:
            self._held += entries
            return
        fresh = [entry for entry in entries if entry_id(entry[0]) > self.after]
        if fresh:
            self.after = entry_id(fresh[-1][0])
            self._entries += fresh
            self._ready.set()

    def hold(self) -> None:
        """Keep what the hub hands out aside until `caught_up`."""
        self._held = []

    def caught_up(self, backlog: list) -> None:
        """End the catch-up: the backlog first, then what came meanwhile."""
        held, self._held = self._held or [], None
        self.offer(backlog)
        self.offer(held)

    async def next(self, timeout_s: float) -> list:
        """The entries that came since the last call (decoded), waiting up to `timeout_s` for
        the first; [] if none came."""
        self._hub.ensure_reading()
        if not self._entries:
            # A timer that sets the event rather than a timeout that cancels the wait: nothing
            # is cancelled, so no cancellation can reach the follow loop that called.
            timer = asyncio.get_running_loop().call_later(timeout_s, self._ready.set)
            try:
                await self._ready.wait()
            finally:
                timer.cancel()
        raw, self._entries = self._entries, []
        self._ready.clear()
        return self._decode(raw) if raw else []


class StreamHub:
    """The reader of one event loop: the streams followed, each one's read position, and the
    task that runs the XREAD while anything is followed."""

    def __init__(self, redis) -> None:  # noqa: ANN001  (a redis.asyncio client)
        self.redis = redis
        self.feeds: dict[str, set[Feed]] = {}
        self.positions: dict[str, str] = {}  # stream -> the last id the hub has read
        self.wake_key = f"taskdeck:hub:wake:{uuid.uuid4().hex}"
        self._wake_after = "0-0"
        self._reader: asyncio.Task | None = None
        self.reads = 0  # XREAD calls made (for tests and benchmarks)

    async def subscribe(self, stream: str, after: str, decode: Callable) -> Feed:
        """A feed of `stream` after `after` (a stream id, "0" for all, "$" for what comes)."""
        if after == "$":
            last = await self.redis.xrevrange(stream, count=1)
            after = last[0][0] if last else "0-0"
        feed = Feed(stream, entry_id(after), decode, self)
        position = self.positions.get(stream)
        self.feeds.setdefault(stream, set()).add(feed)
        try:
            if position is None:  # a stream new to the hub: it reads from this feed's position
                self.positions[stream] = id_text(feed.after)
                self.ensure_reading()
                await self._wake()
            elif entry_id(position) > feed.after:  # the hub has read past it: catch it up
                feed.hold()
                backlog: list = []
                try:
                    backlog = await self.redis.xrange(
                        stream, min=f"({id_text(feed.after)}", max=position
                    )
                finally:
                    feed.caught_up(backlog)
        except BaseException:
            self.unsubscribe(feed)
            raise
        return feed

    def unsubscribe(self, feed: Feed) -> None:
        followers = self.feeds.get(feed.stream)
        if followers is None:
            return
        followers.discard(feed)
        if not followers:  # the next XREAD leaves the stream out
            del self.feeds[feed.stream]
            self.positions.pop(feed.stream, None)

    async def _wake(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.wake_key, {"w": "1"}, maxlen=10, approximate=False)
        pipe.expire(self.wake_key, WAKE_TTL_S)
        await pipe.execute()

    async def _read(self) -> None:
        """XREAD every followed stream until none is followed; hand the entries out."""
        while self.positions:
            asked = dict(self.positions)
            streams = {self.wake_key: self._wake_after, **asked}
            try:
                result = await self.redis.xread(streams, count=COUNT, block=BLOCK_MS)
            except Exception:
                log.warning("reading the live streams failed; retrying", exc_info=True)
                await asyncio.sleep(RETRY_S)
                continue
            self.reads += 1
            for key, entries in result or []:
                stream = key.decode() if isinstance(key, bytes) else key
                last = entries[-1][0]
                last = last.decode() if isinstance(last, bytes) else last
                if stream == self.wake_key:
                    self._wake_after = last
                elif self.positions.get(stream) == asked.get(stream):
                    # (else nobody follows it any more, or a new follower restarted it from
                    # another position while this read was out: the next read asks again)
                    self.positions[stream] = last
                    for feed in list(self.feeds.get(stream, ())):
                        feed.offer(entries)
        self._reader = None

    def ensure_reading(self) -> None:
        """Start the reader if streams are followed and it is not running (not started yet,
        or ended: a bug would end it silently, a task's exception shows only when the task is
        collected)."""
        if not self.positions:
            return
        if self._reader is not None and not self._reader.done():
            return
        if self._reader is not None and not self._reader.cancelled() and self._reader.exception():
            log.error("the live stream reader failed", exc_info=self._reader.exception())
        self._reader = asyncio.get_running_loop().create_task(self._read())


# redis client -> its hub, keyed by the client itself, not its id (which a later client could
# take once this one is gone)
_hubs: dict = {}


def hub(redis) -> StreamHub:  # noqa: ANN001
    """The hub that reads with `redis` (a redis.asyncio client, which belongs to one event
    loop)."""
    current = _hubs.get(redis)
    if current is None:
        current = _hubs[redis] = StreamHub(redis)
    return current


@asynccontextmanager
async def follow(redis, stream: str, after: str, decode: Callable) -> AsyncIterator[Feed]:  # noqa: ANN001
    """Follow `stream` after `after` for the length of the `async with`."""
    current = hub(redis)
    feed = await current.subscribe(stream, after, decode)
    try:
        yield feed
    finally:
        current.unsubscribe(feed)
