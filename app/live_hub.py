"""One Redis read per app process for every task stream its open pages follow.

Each task page used to block in an XREAD of its own, so with 10 tabs open every tick of events
cost 10 Redis round trips, parsed one after another in the app's one event loop. The hub keeps
one blocking XREAD over all the streams followed in this process, plus a wake-up stream of its
own so that a new follower is read at once, and hands each follower the entries of its stream
newer than its own position. A page still receives only the stream it shows.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from app.events import Event, parse_event
from app.live import async_redis, task_stream

log = logging.getLogger(__name__)

BLOCK_MS = 1000  # the longest the hub waits in one read (it stops once nobody follows)
COUNT = 500  # entries per stream and read
WAKE_TTL_S = 3600

Entries = list[tuple[str, Event]]


def id_key(stream_id: str) -> tuple[int, int]:
    """A stream id ("ms-seq", or "0") as a tuple that sorts like Redis sorts the ids."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


class Follower:
    """One page's view of one task stream: the entries after `after`, as they arrive."""

    def __init__(self, hub: LiveHub, stream: str, after: str) -> None:
        self.hub, self.stream, self.after = hub, stream, after
        self._entries: Entries = []
        self._arrived = asyncio.Event()

    def _deliver(self, entries: Entries, last_id: str) -> None:
        """Take the entries newer than this follower's position; move it to `last_id`."""
        if id_key(last_id) <= id_key(self.after):
            return
        newer = [entry for entry in entries if id_key(entry[0]) > id_key(self.after)]
        self.after = last_id
        if newer:
            self._entries += newer
            self._arrived.set()

    async def read(self, timeout_s: float) -> Entries:
        """The entries that arrived since the last read; waits up to `timeout_s` for one."""
        if not self._entries:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._arrived.wait()
            except TimeoutError:
                return []
        entries, self._entries = self._entries, []
        self._arrived.clear()
        return entries

    def leave(self) -> None:
        """Stop following (the page closed or moved on)."""
        self.hub._leave(self)


class LiveHub:
    """The followers of one event loop and the one read that serves them."""

    def __init__(self) -> None:
        self._followers: dict[str, set[Follower]] = {}
        self._wake_key = f"taskdeck:live-hub:{uuid.uuid4().hex}"
        self._wake_after = "0"
        self._reader: asyncio.Task | None = None
        self._wakes: set[asyncio.Task] = set()

    def follow(self, task_id: int, after: str = "0") -> Follower:
        """Follow a task's stream from `after` (exclusive)."""
        follower = Follower(self, task_stream(task_id), after)
        self._followers.setdefault(follower.stream, set()).add(follower)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_loop(), name="taskdeck-live-hub")
        else:
            wake = asyncio.create_task(self._wake())
            self._wakes.add(wake)
            wake.add_done_callback(self._wakes.discard)
        return follower

    def _leave(self, follower: Follower) -> None:
        followers = self._followers.get(follower.stream)
        if followers is not None:
            followers.discard(follower)
            if not followers:
                del self._followers[follower.stream]

    async def _wake(self) -> None:
        """Cut the reader's current wait short, so it reads the streams followed now."""
        try:
            redis = async_redis()
            await redis.xadd(self._wake_key, {"w": "1"}, maxlen=10, approximate=False)
            await redis.expire(self._wake_key, WAKE_TTL_S)
        except Exception:  # the reader's next round (within BLOCK_MS) reads it anyway
            log.warning("live hub: could not wake the reader", exc_info=True)

    def _positions(self) -> dict[str, str]:
        """Where to read each followed stream from: its least advanced follower's position."""
        positions = {self._wake_key: self._wake_after}
        for stream, followers in self._followers.items():
            positions[stream] = min((f.after for f in followers), key=id_key)
        return positions

    async def _read_loop(self) -> None:
        while self._followers:
            try:
                result = await async_redis().xread(self._positions(), count=COUNT, block=BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("live hub: reading the task streams failed", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            for stream, entries in result or []:
                name = stream.decode() if isinstance(stream, bytes) else stream
                last = entries[-1][0]
                last_id = last.decode() if isinstance(last, bytes) else last
                if name == self._wake_key:
                    self._wake_after = last_id
                    continue
                decoded = _decode(entries)
                for follower in list(self._followers.get(name, ())):
                    follower._deliver(decoded, last_id)


def _decode(entries) -> Entries:  # noqa: ANN001
    """Stream entries as (id, event); an entry that is not an event is logged and skipped."""
    out: Entries = []
    for entry_id, fields in entries:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        try:
            out.append((eid, parse_event(fields.get(b"e") or fields.get("e"))))
        except Exception:
            log.warning("live hub: entry %s is not an event, skipped", eid)
    return out


_hubs: dict[int, LiveHub] = {}


def hub() -> LiveHub:
    """The hub of the running event loop."""
    key = id(asyncio.get_running_loop())
    found = _hubs.get(key)
    if found is None:
        found = _hubs[key] = LiveHub()
    return found
