"""Running token usage of a run while Claude streams, and its cost estimated from list prices.

With partial messages on, the CLI passes the raw Anthropic stream events on (the SDK's
`StreamEvent`): `message_start` carries the usage of a new API message (its input and cache
tokens, a first output count), each `message_delta` the cumulative usage so far, `message_stop`
ends it. `UsageTally` adds those up across the run's messages (subagents included) and says when
a new `UsageEvent` is due: at most one per `MIN_INTERVAL_S`, so a fast stream does not flood the
pipe. The result event stays the truth at the end; these numbers only fill the wait.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from app.events import UsageEvent

MIN_INTERVAL_S = 0.25  # at most four usage events a second

# Anthropic list prices in dollars per million input / output tokens. A cache write costs 1.25x
# the input price, a cache read 0.1x. A model not listed here has no estimated cost.
PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-4-6": (5.0, 25.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-haiku": (0.25, 1.25),
}
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1
_DATED = re.compile(r"^(?P<name>.+?)(-\d{8}|-latest)?$")

# Usage fields of the API -> fields of UsageEvent.
FIELDS = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_input_tokens": "cache_read_tokens",
    "cache_creation_input_tokens": "cache_creation_tokens",
}


def price_of(model: str | None) -> tuple[float, float] | None:
    """(input, output) dollars per million tokens of a model id (dated ids too), or None."""
    if not model:
        return None
    match = _DATED.match(model.strip().lower())
    return PRICES.get(match.group("name")) if match else None


def estimate_cost(model: str | None, usage: dict[str, int]) -> float | None:
    """Dollars for `usage` (UsageEvent field names) at the model's list price, or None."""
    price = price_of(model)
    if price is None:
        return None
    per_in, per_out = (p / 1_000_000 for p in price)
    return (
        usage.get("input_tokens", 0) * per_in
        + usage.get("cache_creation_tokens", 0) * per_in * CACHE_WRITE_FACTOR
        + usage.get("cache_read_tokens", 0) * per_in * CACHE_READ_FACTOR
        + usage.get("output_tokens", 0) * per_out
    )


def run_cost(reported: float, session_before: float, estimate: float | None) -> float:
    """This run's own cost from the result's `total_cost_usd`.

    A run that resumes a session (a follow-up) reports the session's cost so far: the CLI
    restores the session's cost and counts on from it (measured with the bundled CLI: a
    follow-up's total was the first run's $0.1081 plus its own $0.0471 to the last digit).
    So `session_before`, what the session's earlier runs cost, is taken off, unless the report
    is plainly not cumulative: smaller than that, or, when the model's price is known, nearer
    to this run's own tokens at list price (`estimate`) without taking it off."""
    if session_before <= 0 or reported < session_before:
        return reported
    own = reported - session_before
    if estimate is not None and abs(reported - estimate) < abs(own - estimate):
        return reported
    return own


@dataclass
class _Message:
    """One API message being streamed: its model and cumulative usage so far."""

    model: str | None
    usage: dict[str, int]


class UsageTally:
    """Adds up the usage of a run's streamed messages; makes throttled UsageEvents."""

    def __init__(self, attempt: int, clock=time.monotonic) -> None:  # noqa: ANN001
        self.attempt = attempt
        self._clock = clock
        self._done = dict.fromkeys(FIELDS.values(), 0)
        self._done_cost: float | None = 0.0
        self._streaming: dict[str, _Message] = {}  # by parent tool use id ("" = main agent)
        self._last_emit: float | None = None
        self._pending = False

    def feed(self, raw: dict, parent: str | None) -> UsageEvent | None:
        """Take one raw stream event (of the main agent or a subagent, `parent`); return a
        UsageEvent when the counts changed and one is due."""
        kind = raw.get("type")
        key = parent or ""
        if kind == "message_start":
            message = raw.get("message") or {}
            self._finish(key)
            usage = self._counts(message.get("usage"))
            self._streaming[key] = _Message(message.get("model"), usage)
        elif kind == "message_delta" and key in self._streaming:
            self._streaming[key].usage.update(self._counts(raw.get("usage")))
        elif kind == "message_stop":
            self._finish(key)
            return self.due()
        else:
            return self.due()
        self._pending = True
        return self.due()

    def due(self) -> UsageEvent | None:
        """The pending update, if the last one is at least MIN_INTERVAL_S old."""
        now = self._clock()
        if not self._pending or (
            self._last_emit is not None and now - self._last_emit < MIN_INTERVAL_S
        ):
            return None
        self._pending, self._last_emit = False, now
        return self.snapshot()

    def snapshot(self) -> UsageEvent:
        """The usage so far: finished messages plus those still streaming."""
        totals = dict(self._done)
        cost = self._done_cost
        for message in self._streaming.values():
            for name, value in message.usage.items():
                totals[name] += value
            part = estimate_cost(message.model, message.usage)
            cost = None if cost is None or part is None else cost + part
        cost = None if cost is None else round(cost, 6)
        return UsageEvent(attempt=self.attempt, cost_usd=cost, **totals)

    def _finish(self, key: str) -> None:
        message = self._streaming.pop(key, None)
        if message is None:
            return
        for name, value in message.usage.items():
            self._done[name] += value
        part = estimate_cost(message.model, message.usage)
        known = self._done_cost is not None and part is not None
        self._done_cost = self._done_cost + part if known else None

    @staticmethod
    def _counts(usage: dict | None) -> dict[str, int]:
        """The token counts present in an API usage dict, under UsageEvent's names."""
        usage = usage or {}
        return {ours: int(usage[theirs] or 0) for theirs, ours in FIELDS.items() if theirs in usage}
