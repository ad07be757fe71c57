"""UsageTally: running totals across streamed messages, estimated cost, and the throttle."""

from __future__ import annotations

import pytest

from worker.usage import UsageTally, estimate_cost, price_of


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def start(model: str, input_tokens: int, output_tokens: int = 1, cache_write: int = 0) -> dict:
    usage = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": 0,
    }
    return {"type": "message_start", "message": {"model": model, "usage": usage}}


def delta(output_tokens: int) -> dict:
    return {"type": "message_delta", "delta": {}, "usage": {"output_tokens": output_tokens}}


def test_prices_know_dated_ids_and_nothing_else():
    assert price_of("claude-sonnet-4-5-20250929") == (3.0, 15.0)
    assert price_of("claude-opus-4-5") == (5.0, 25.0)
    assert price_of("claude-opus-5-5") is None and price_of(None) is None
    cost = estimate_cost(
        "claude-sonnet-4-5", {"input_tokens": 1_000_000, "cache_creation_tokens": 1_000_000}
    )
    assert cost == pytest.approx(3.0 + 3.75)


def test_totals_add_finished_and_streaming_messages_with_throttle():
    clock = Clock()
    tally = UsageTally(attempt=2, clock=clock)
    first = tally.feed(start("claude-sonnet-4-5", 100, cache_write=1000), None)
    assert (first.attempt, first.input_tokens, first.output_tokens) == (2, 100, 1)
    assert first.cache_creation_tokens == 1000
    clock.now += 0.1
    assert tally.feed(delta(40), None) is None  # too soon: held back
    clock.now += 0.2
    held = tally.due()
    assert held.output_tokens == 40 and tally.due() is None
    clock.now += 1
    assert tally.feed({"type": "message_stop"}, None) is None  # nothing changed
    second = tally.feed(start("claude-sonnet-4-5", 10), "toolu_1")  # a subagent's message
    assert (second.input_tokens, second.output_tokens) == (110, 41)
    assert second.cost_usd == pytest.approx((110 + 1250 + 41 * 5) * 3 / 1e6)


def test_a_message_of_an_unknown_model_leaves_cost_unknown():
    tally = UsageTally(attempt=1, clock=Clock())
    event = tally.feed(start("claude-opus-5-5", 100), None)
    assert event.input_tokens == 100 and event.cost_usd is None
