"""What run_claude reports: API errors, retries, thinking, max turns, and stream-json lines it
does not know (kept as raw events, never dropped, never crashing the run)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from app.events import parse_event
from worker.claude_code import RunSpec, run_claude

# A stand-in CLI speaking the SDK's control protocol, for what the real CLI cannot be made to
# print: a frame of a type nobody knows yet, and a known type in a shape the SDK cannot parse.
FUTURE_CLI = """#!{python}
import json, sys

def say(frame):
    sys.stdout.write(json.dumps(frame) + "\\n")
    sys.stdout.flush()

for line in sys.stdin:
    message = json.loads(line)
    if message.get("type") == "control_request":
        say({{"type": "control_response", "response": {{"subtype": "success",
             "request_id": message["request_id"], "response": {{}}}}}})
    elif message.get("type") == "user":
        say({{"type": "system", "subtype": "init", "session_id": "s-1", "model": "future",
             "tools": ["Bash"], "cwd": "."}})
        say({{"type": "hologram", "payload": {{"shape": "cube"}}}})
        say({{"type": "assistant", "surprise": True}})
        say({{"type": "assistant", "message": {{"id": "m1", "model": "future", "role":
             "assistant", "content": [{{"type": "text", "text": "still here"}}]}},
             "parent_tool_use_id": None, "session_id": "s-1"}})
        say({{"type": "result", "subtype": "success", "is_error": False, "num_turns": 1,
             "duration_ms": 5, "duration_api_ms": 1, "session_id": "s-1", "result": "done",
             "total_cost_usd": 0.01, "usage": {{"input_tokens": 3, "output_tokens": 2}}}})
        break
"""


def run(spec: RunSpec):
    events = []
    outcome = asyncio.run(run_claude(spec, events.append))
    for event in events:  # every event survives its JSON round trip
        assert parse_event(event.model_dump_json()) == event
    return outcome, events


def of(events, kind):
    return [e for e in events if e.type == kind]


@pytest.mark.parametrize(
    ("status", "text"),
    [(500, "Internal server error"), (529, "Overloaded"), (401, "Invalid API key")],
)
def test_an_api_error_is_a_failed_result_with_its_status(env, tmp_path, status, text):
    outcome, events = run(RunSpec(prompt=f"x [scenario:error_{status}]", cwd=str(tmp_path)))
    assert not outcome.ok and outcome.status == "failed"
    assert outcome.result.is_error and outcome.result.api_error_status == status
    assert text in outcome.result.text
    assert outcome.error is None  # the CLI reported it: not a runner error


def test_the_cli_retrying_an_overloaded_api_is_reported(env, tmp_path):
    spec = RunSpec(
        prompt="x [scenario:error_529_then_ok]",
        cwd=str(tmp_path),
        env={"CLAUDE_CODE_MAX_RETRIES": "2"},
    )
    outcome, events = run(spec)
    assert outcome.ok
    retry = of(events, "api_retry")[0]
    assert (retry.retry, retry.max_retries, retry.error_status) == (1, 2, 529)
    assert retry.delay_ms > 0


def test_thinking_and_max_turns_are_reported(env, tmp_path):
    _, events = run(RunSpec(prompt="hmm [scenario:thinking]", cwd=str(tmp_path)))
    assert "I will reply" in of(events, "thinking")[0].text
    outcome, events = run(
        RunSpec(
            prompt="loop [scenario:max_turns]",
            cwd=str(tmp_path),
            max_turns=2,
            allowed_tools=["Bash"],
        )
    )
    assert outcome.result.subtype == "error_max_turns" and outcome.status == "failed"
    assert [(p.turn, p.max_turns) for p in of(events, "progress")] == [(1, 2), (2, 2)]
    assert of(events, "tool_result")[0].output.strip() == "step 1"


def test_unknown_stream_json_is_kept_as_raw_events(env, tmp_path, monkeypatch):
    from app.settings import get_settings

    cli = tmp_path / "future-claude"
    cli.write_text(FUTURE_CLI.format(python=sys.executable))
    cli.chmod(0o755)
    monkeypatch.setenv("TASKDECK_CLAUDE_PATH", str(cli))
    get_settings.cache_clear()
    work = tmp_path / "work"
    work.mkdir()

    outcome, events = run(RunSpec(prompt="anything", cwd=str(work), rlimit_as_bytes=0))

    assert outcome.ok, outcome.error
    raws = [e.data for e in of(events, "raw")]
    assert {"type": "hologram", "payload": {"shape": "cube"}} in raws
    assert {"type": "assistant", "surprise": True} in raws  # a shape the SDK cannot parse
    assert of(events, "text")[0].text == "still here"  # the run went on after both
    assert outcome.result.text == "done" and outcome.session_id == "s-1"
    assert [e.type for e in events][0] == "prompt"
    assert not Path(work / "claude.pid").exists()


def test_docs_show_a_valid_example_of_every_event_type():
    import json
    import re
    from typing import get_args

    from app.events import Event

    text = (Path(__file__).resolve().parent.parent / "docs" / "events.md").read_text()
    examples = [
        parse_event(json.loads(block))
        for block in re.findall(r"```json\n(.*?)```", text, re.DOTALL)
    ]
    documented = {event.type for event in examples}
    union = get_args(get_args(Event)[0])
    assert documented == {model.model_fields["type"].default for model in union}


def test_usage_ticks_while_a_message_streams(env, tmp_path):
    """The real CLI against a slow reply: usage events arrive during the turn, before its text
    and result, with growing output counts and a cost at the model's list price; the result keeps
    the final numbers."""
    spec = RunSpec(
        prompt="count [scenario:slow] [delay:0.1]", cwd=str(tmp_path), model="claude-sonnet-4-5"
    )
    outcome, events = run(spec)
    assert outcome.ok
    kinds = [e.type for e in events]
    usage = of(events, "usage")
    before_text = [e for e in usage if events.index(e) < kinds.index("text")]
    assert len(before_text) >= 3, kinds  # mid-turn: while the text is still being typed
    outputs = [e.output_tokens for e in usage]
    assert outputs == sorted(outputs) and outputs[0] < outputs[-1]
    assert all(e.input_tokens == outcome.result.input_tokens for e in usage)
    assert all(b.ts - a.ts >= 0.2 for a, b in zip(usage, usage[1:], strict=False))  # throttled
    last = usage[-1]
    assert kinds.index("result") > events.index(last)
    assert last.output_tokens <= outcome.result.output_tokens
    assert last.cost_usd == pytest.approx(outcome.result.cost_usd, rel=0.05)


def test_usage_of_a_model_without_a_known_price_has_no_cost(env, tmp_path):
    spec = RunSpec(
        prompt="hi [scenario:slow] [delay:0.05]", cwd=str(tmp_path), model="claude-unlisted-9"
    )
    outcome, events = run(spec)
    usage = of(events, "usage")
    assert outcome.ok and usage
    assert all(e.cost_usd is None and e.input_tokens > 0 for e in usage)
