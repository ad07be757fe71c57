"""UsageTally: running totals across streamed messages, estimated cost, and the throttle; a
run's own cost when its session had cost before; what a task and its attempts count as spent."""

from __future__ import annotations

import pytest

from worker.usage import UsageTally, estimate_cost, price_of, run_cost


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


def test_a_follow_ups_own_cost_is_what_it_adds_to_its_sessions():
    # The first run cost 0.1081; the follow-up's CLI reports the session's 0.1552 so far, and
    # its own tokens at list price come to 0.0471.
    assert run_cost(0.1552, 0.1081, 0.0471) == pytest.approx(0.0471)
    assert run_cost(0.1552, 0.1081, None) == pytest.approx(0.0471)  # a model with no list price
    assert run_cost(0.05, 0.0, 0.05) == 0.05  # nothing before: the report is the run's own
    assert run_cost(0.03, 0.1081, 0.03) == 0.03  # less than before: not counted on from it
    assert run_cost(0.12, 0.02, 0.12) == 0.12  # its own tokens say the report is its own


def test_a_running_tasks_usage_adds_what_its_finished_attempts_spent():
    from app.presenters import usage_values, with_usage

    settled = {"input_tokens": "100", "output_tokens": "10", "cost_usd": "0.25"}
    live = {"input_tokens": 4, "output_tokens": 2, "cost_usd": 0.01}
    shown = usage_values(live, settled=settled)
    assert shown == {"tokens_in": "104", "tokens_out": "12", "tokens": "116", "cost": "~$0.2600"}
    row = {"id": "1", "tokens": "110", "cost": "$0.2500", "usage_live": ""}
    row |= {f"settled_{name}": value for name, value in settled.items()}
    assert with_usage(row, live)["tokens"] == "116"
    twice = with_usage(with_usage(row, live), live)  # the list page applies each new usage
    assert (twice["tokens"], twice["cost"]) == ("116", "~$0.2600")


def test_a_cancelled_run_keeps_what_it_spent(env, worker_pool):
    from app import live, service
    from app.schemas import TaskCreate
    from tests.conftest import wait_for_status, wait_until

    task = service.create_task(TaskCreate(prompt="long [scenario:slow] [delay:0.3]"))
    wait_until(
        lambda: any(e.type == "usage" and e.output_tokens for _, e in live.read(task.id)),
        60,
        message="a usage event with output tokens",
    )

    service.cancel_task(task.id)

    done = wait_for_status(task.id, ("cancelled",), timeout=30)
    [attempt] = service.list_attempts(task.id)
    assert attempt.status == "cancelled"
    assert attempt.input_tokens > 0 and attempt.output_tokens > 0 and attempt.cost_usd > 0
    spent = (attempt.cost_usd, attempt.input_tokens, attempt.output_tokens)
    assert (done.cost_usd, done.input_tokens, done.output_tokens) == spent
    assert done.cache_creation_tokens == attempt.cache_creation_tokens
