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


def test_running_usage_is_the_newest_usage_after_the_newest_status(env):
    from app import metrics, service
    from app.events import StatusEvent, UsageEvent
    from app.schemas import TaskCreate

    task = service.create_task(TaskCreate(prompt="count [scenario:text]"))
    other = service.create_task(TaskCreate(prompt="done [scenario:text]"))
    events = [
        ("1-1", StatusEvent(attempt=1, status="running")),
        ("1-2", UsageEvent(attempt=1, input_tokens=10, output_tokens=1)),
        ("1-3", UsageEvent(attempt=1, input_tokens=10, output_tokens=7, cost_usd=0.5)),
    ]
    service.record_events(task.id, events)
    service.record_events(
        other.id,
        [
            ("1-1", UsageEvent(attempt=1, input_tokens=3, output_tokens=3)),
            ("1-2", StatusEvent(attempt=1, status="succeeded")),
        ],
    )
    usage = metrics.running_usage([task.id, other.id])
    assert list(usage) == [task.id]
    assert (usage[task.id]["output_tokens"], usage[task.id]["cost_usd"]) == (7, 0.5)
    assert metrics.running_usage([]) == {}


def test_usage_shows_as_an_estimate_or_tokens_only():
    from app.presenters import usage_values, with_usage

    shown = usage_values({"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.0123})
    assert shown == {"tokens_in": "10", "tokens_out": "5", "tokens": "15", "cost": "~$0.0123"}
    assert usage_values({"cost_usd": 0.5}, estimated=False)["cost"] == "$0.5000"
    assert usage_values({"input_tokens": 1, "cost_usd": None})["cost"] == "-"
    row = {"id": "1", "tokens": "0", "cost": "$0.0000", "usage_live": ""}
    assert with_usage(row, None) is row
    assert with_usage(row, {"input_tokens": 4, "output_tokens": 2})["tokens"] == "6"
