"""The scripted demo model, driven by the real bundled Claude Code CLI and by plain HTTP."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import claude_agent_sdk
import pytest

from worker.demo_model import SCENARIOS, DemoModel, parse_conversation

CLI = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(30)
needs_cli = pytest.mark.skipif(not CLI.exists(), reason="bundled Claude Code CLI not found")


@pytest.fixture(scope="module")
def model():
    with DemoModel() as demo:
        yield demo


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    events: list[dict[str, Any]]
    seconds: float

    @property
    def result(self) -> dict[str, Any]:
        results = [event for event in self.events if event.get("type") == "result"]
        assert results, f"no result line in {self.events}"
        return results[-1]

    def of_type(self, kind: str, subtype: str | None = None) -> list[dict[str, Any]]:
        return [
            event
            for event in self.events
            if event.get("type") == kind and (subtype is None or event.get("subtype") == subtype)
        ]


def run_claude(
    model: DemoModel,
    prompt: str,
    workdir: Path,
    *extra: str,
    retries: int = 0,
    max_turns: int = 5,
) -> Run:
    """Run `claude -p` in `workdir` against the demo model, with a clean, local-only environment."""
    state = workdir.parent / f"{workdir.name}-claude"
    state.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(state),
        "CLAUDE_CONFIG_DIR": str(state / "config"),
        "ANTHROPIC_BASE_URL": model.url,
        "ANTHROPIC_API_KEY": "sk-test",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": str(retries),
    }
    command = [
        str(CLI),
        "-p",
        prompt,
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "acceptEdits",
        "--allowedTools",
        "Write,Bash,Read,Edit",
        "--max-turns",
        str(max_turns),
        *extra,
    ]
    started = time.monotonic()
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=25)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return Run(done.returncode, events, time.monotonic() - started)


def session_requests(model: DemoModel, session_id: str) -> list[dict[str, Any]]:
    """The Messages API bodies the CLI sent for one session (its id is in metadata.user_id)."""
    return [
        body
        for body in list(model.requests)
        if session_id in str(body.get("metadata", {}).get("user_id", ""))
    ]


def post(model: DemoModel, body: dict[str, Any], path: str = "/v1/messages?beta=true"):
    host, port = model.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    headers = {"content-type": "application/json", "x-api-key": "sk-test"}
    connection.request("POST", path, body=json.dumps(body), headers=headers)
    return connection, connection.getresponse()


def sse(raw: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in raw.split("\n\n"):
        if not frame.strip():
            continue
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        events.append((event_line.removeprefix("event: "), json.loads(data_line[6:])))
    return events


def request_body(prompt: str, *history: dict[str, Any], stream: bool = True) -> dict[str, Any]:
    return {
        "model": "claude-test-model",
        "max_tokens": 1000,
        "stream": stream,
        "messages": [{"role": "user", "content": prompt}, *history],
    }


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


# ---------------------------------------------------------------------------------------------
# The real CLI against the fake
# ---------------------------------------------------------------------------------------------


@needs_cli
def test_write_scenario_creates_the_file_and_succeeds(model, workdir):
    run = run_claude(model, "Please go [scenario:write]", workdir)

    assert (workdir / "hello.txt").read_text() == "hello from taskdeck\n"
    result = run.result
    assert run.returncode == 0
    assert result["is_error"] is False
    assert result["result"] == "Done: wrote hello.txt"
    assert result["total_cost_usd"] > 0
    assert result["num_turns"] == 2
    assert len(session_requests(model, result["session_id"])) == 2


@needs_cli
def test_demo_scenario_writes_the_named_python_file(model, workdir):
    run = run_claude(model, "create hello.py that prints hi", workdir)

    assert run.result["is_error"] is False
    assert "Taskdeck demo model" in run.result["result"]
    script = workdir / "hello.py"
    printed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert printed.stdout == "hi\n"
    # The Write used an absolute path in the CLI's working directory.
    (tool_use,) = [
        block
        for event in run.of_type("assistant")
        for block in event["message"]["content"]
        if block["type"] == "tool_use"
    ]
    assert tool_use["name"] == "Write"
    assert tool_use["input"]["file_path"] == str(script)


@needs_cli
def test_demo_scenario_without_a_file_answers_in_text(model, workdir):
    run = run_claude(model, "What can you do?", workdir)

    assert run.result["is_error"] is False
    assert run.result["num_turns"] == 1
    assert "Taskdeck demo model" in run.result["result"]
    assert "not Claude" in run.result["result"]
    assert list(workdir.iterdir()) == []


@needs_cli
def test_text_scenario(model, workdir):
    run = run_claude(model, "Say hi [scenario:text]", workdir)

    assert run.result["is_error"] is False
    assert run.result["result"] == "Hello from the scripted model."


@needs_cli
def test_overloaded_api_gives_an_error_result_quickly(model, workdir):
    run = run_claude(model, "x [scenario:error_529]", workdir, retries=0)

    assert run.returncode == 1
    assert run.result["is_error"] is True
    assert run.result["api_error_status"] == 529
    assert "529" in run.result["result"]
    assert run.seconds < 10


@needs_cli
def test_one_overload_then_success_with_one_retry(model, workdir):
    run = run_claude(model, "hi [scenario:error_529_then_ok]", workdir, retries=1)

    assert run.result["is_error"] is False
    assert run.result["result"] == "Hello from the scripted model."
    (retry,) = run.of_type("system", "api_retry")
    assert retry["error_status"] == 529


@needs_cli
def test_three_turns(model, workdir):
    run = run_claude(model, "[scenario:three_turns] go", workdir)

    result = run.result
    assert result["is_error"] is False
    assert result["num_turns"] == 3
    assert len(session_requests(model, result["session_id"])) == 3
    assert result["result"] == "Three turns done. `a.txt` contains: three turns"


@needs_cli
def test_thinking_scenario(model, workdir):
    run = run_claude(model, "ponder [scenario:thinking]", workdir)

    assert run.result["is_error"] is False
    assert run.result["result"] == "Here is my answer, after some thought."
    blocks = [block for event in run.of_type("assistant") for block in event["message"]["content"]]
    assert [block["type"] for block in blocks] == ["thinking", "text"]
    assert blocks[0]["signature"]


@needs_cli
def test_edit_scenario_overwrites_readme_and_adds_a_module(model, workdir):
    (workdir / "README.md").write_text("old readme\n")

    run = run_claude(model, "improve it [scenario:edit]", workdir)

    assert run.result["is_error"] is False
    assert "Edited by the Taskdeck demo model" in (workdir / "README.md").read_text()
    assert "def hello()" in (workdir / "src" / "new_file.py").read_text()
    requests = session_requests(model, run.result["session_id"])
    assert len(requests) == 2
    # Both tool results come back in one user message.
    results = [b for b in requests[1]["messages"][-1]["content"] if b["type"] == "tool_result"]
    assert len(results) == 2


@needs_cli
def test_max_turns_scenario_stops_at_the_limit(model, workdir):
    run = run_claude(model, "loop [scenario:max_turns]", workdir, max_turns=2)

    assert run.result["subtype"] == "error_max_turns"
    assert run.result["is_error"] is True


@needs_cli
def test_resume_starts_the_script_again_for_the_new_prompt(model, workdir):
    first = run_claude(model, "go [scenario:write]", workdir)
    session_id = first.result["session_id"]

    second = run_claude(model, "say hi [scenario:text]", workdir, "--resume", session_id)

    assert second.result["is_error"] is False
    assert second.result["session_id"] == session_id
    assert second.result["result"] == "Hello from the scripted model."
    last = session_requests(model, session_id)[-1]
    roles = [message["role"] for message in last["messages"]]
    assert roles.count("assistant") == 2  # the first run's history came along


@needs_cli
def test_parallel_conversations_do_not_mix(model, tmp_path):
    prompts = ["a [scenario:write]", "b [scenario:three_turns]", "c [scenario:text]"]
    dirs = [tmp_path / f"w{index}" for index in range(len(prompts))]
    for directory in dirs:
        directory.mkdir()

    with ThreadPoolExecutor(len(prompts)) as pool:
        runs = list(
            pool.map(lambda args: run_claude(model, *args), zip(prompts, dirs, strict=True))
        )

    assert [run.result["is_error"] for run in runs] == [False, False, False]
    assert [run.result["num_turns"] for run in runs] == [2, 3, 1]
    assert (dirs[0] / "hello.txt").exists() and (dirs[1] / "a.txt").exists()


# ---------------------------------------------------------------------------------------------
# Wire format over plain HTTP
# ---------------------------------------------------------------------------------------------


def test_streams_sse_events_like_the_api(model):
    connection, response = post(model, request_body("hi [scenario:text]"))
    raw = response.read().decode()
    connection.close()

    assert response.status == 200
    assert response.getheader("content-type").startswith("text/event-stream")
    events = sse(raw)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names[1] == "content_block_start" and names[-3] == "content_block_stop"
    assert all(name == data["type"] for name, data in events)
    start = events[0][1]["message"]
    assert start["model"] == "claude-test-model"
    assert start["id"].startswith("msg_01")
    assert set(start["usage"]) >= {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    }
    deltas = [data["delta"]["text"] for name, data in events if name == "content_block_delta"]
    assert len(deltas) >= 2
    assert "".join(deltas) == "Hello from the scripted model."
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"


def test_tool_use_is_streamed_as_input_json_deltas(model):
    connection, response = post(model, request_body("go [scenario:write]"))
    events = sse(response.read().decode())
    connection.close()

    (tool_start,) = [
        data["content_block"]
        for name, data in events
        if name == "content_block_start" and data["content_block"]["type"] == "tool_use"
    ]
    assert tool_start["id"].startswith("toolu_01") and tool_start["name"] == "Write"
    partial = "".join(
        data["delta"]["partial_json"]
        for name, data in events
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta"
    )
    assert json.loads(partial) == {"file_path": "hello.txt", "content": "hello from taskdeck\n"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_non_streaming_post_gets_a_json_message(model):
    connection, response = post(model, request_body("hi [scenario:text]", stream=False))
    message = json.loads(response.read())
    connection.close()

    assert response.status == 200
    assert message["type"] == "message" and message["model"] == "claude-test-model"
    assert message["content"] == [{"type": "text", "text": "Hello from the scripted model."}]
    assert message["stop_reason"] == "end_turn"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_scenarios(model, status, error_type):
    connection, response = post(model, request_body(f"x [scenario:error_{status}]"))
    body = json.loads(response.read())
    connection.close()

    assert response.status == status
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["error"]["message"]


def test_unknown_scenario_is_a_clear_400(model):
    connection, response = post(model, request_body("x [scenario:nope]"))
    body = json.loads(response.read())
    connection.close()

    assert response.status == 400
    assert "nope" in body["error"]["message"]


def test_plain_endpoints(model):
    host, port = model.url.removeprefix("http://").split(":")
    for method in ("HEAD", "GET"):
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        connection.request(method, "/")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"")
        connection.close()

    connection, response = post(model, request_body("x"), "/v1/messages/count_tokens?beta=true")
    assert (response.status, json.loads(response.read())) == (200, {"input_tokens": 10})
    connection.close()

    connection, response = post(model, {}, "/v1/unknown")
    assert response.status == 404
    assert json.loads(response.read())["type"] == "error"
    connection.close()


def test_slow_scenario_honours_the_delay_marker(model):
    started = time.monotonic()
    connection, response = post(model, request_body("s [scenario:slow] [delay:0.01]"))
    events = sse(response.read().decode())
    connection.close()

    deltas = [data for name, data in events if name == "content_block_delta"]
    assert len(deltas) == 20
    assert 0.2 <= time.monotonic() - started < 2


def test_a_slow_reply_reports_growing_usage_as_it_streams(model):
    connection, response = post(model, request_body("s [scenario:slow] [delay:0.01]"))
    events = sse(response.read().decode())
    connection.close()

    names = [name for name, _ in events]
    usage = [data for name, data in events if name == "message_delta"]
    counts = [data["usage"]["output_tokens"] for data in usage]
    assert len(usage) >= 3 and counts == sorted(counts) and counts[0] < counts[-1]
    assert [data["delta"]["stop_reason"] for data in usage[:-1]] == [None] * (len(usage) - 1)
    assert usage[-1]["delta"]["stop_reason"] == "end_turn"
    assert names.index("message_delta") < names.index("content_block_stop")  # mid-message


def test_delay_s_slows_every_event():
    with DemoModel(default_scenario="text", delay_s=0.05) as slow_model:
        started = time.monotonic()
        connection, response = post(slow_model, request_body("hi"))
        events = sse(response.read().decode())
        connection.close()

    assert time.monotonic() - started >= 0.05 * len(events)


def test_hang_sends_message_start_then_nothing_until_stop():
    demo = DemoModel(default_scenario="hang").start()
    connection, response = post(demo, request_body("hi"))
    assert response.status == 200
    assert response.readline() == b"event: message_start\n"
    response.readline(), response.readline()  # data line, blank line

    sock = connection.sock
    assert select.select([sock], [], [], 0.3)[0] == []  # nothing more arrives

    started = time.monotonic()
    demo.stop()
    assert select.select([sock], [], [], 2)[0] == [sock]
    try:
        assert sock.recv(1024) == b""  # closed by the server
    except ConnectionResetError:
        pass
    assert time.monotonic() - started < 2
    connection.close()


def test_requests_are_recorded(model):
    before = len(model.requests)
    connection, response = post(model, request_body("record me [scenario:text]"))
    response.read()
    connection.close()

    assert model.requests[before]["messages"][0]["content"] == "record me [scenario:text]"


# ---------------------------------------------------------------------------------------------
# Reading a conversation from a request
# ---------------------------------------------------------------------------------------------


def _assistant_write(tool_id: str, path: str) -> dict[str, Any]:
    block = {"type": "tool_use", "id": tool_id, "name": "Write", "input": {"file_path": path}}
    return {"role": "assistant", "content": [block]}


def _tool_result(tool_id: str, content: str, is_error: bool = False) -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
    return {"role": "user", "content": [block | {"is_error": is_error}]}


def test_conversation_step_scenario_and_cwd_come_from_the_request():
    body = request_body(
        "<system-reminder>ignore [scenario:text]</system-reminder>create x.py [scenario:write]",
        {"role": "system", "content": "# Environment\n - Primary working directory: /tmp/w x\n"},
        _assistant_write("toolu_01a", "/tmp/w x/hello.txt"),
        _tool_result("toolu_01a", "File created"),
    )

    conv = parse_conversation(body)

    assert (conv.scenario, conv.step, conv.prompt) == ("write", 1, "create x.py")
    assert conv.cwd == "/tmp/w x"
    assert conv.path("a/b.txt") == "/tmp/w x/a/b.txt"


def test_a_new_prompt_after_history_restarts_at_step_zero_and_keeps_the_first_scenario():
    body = request_body(
        "first [scenario:three_turns]",
        {"role": "assistant", "content": [{"type": "text", "text": "done"}]},
        {"role": "user", "content": [{"type": "text", "text": "and again"}]},
    )

    conv = parse_conversation(body)

    assert (conv.scenario, conv.step, conv.prompt) == ("three_turns", 0, "and again")


def test_a_refused_write_is_read_then_written_again():
    refused = request_body(
        "go [scenario:write]",
        _assistant_write("toolu_01a", "hello.txt"),
        _tool_result("toolu_01a", "File has not been read yet. Read it first.", is_error=True),
    )
    reply = SCENARIOS["write"](parse_conversation(refused))
    assert [(block["name"], block["input"]) for block in reply.blocks] == [
        ("Read", {"file_path": "hello.txt"})
    ]

    read = {"type": "tool_use", "id": "toolu_01b", "name": "Read", "input": {"file_path": "x"}}
    after_read = request_body(
        "go [scenario:write]",
        *refused["messages"][1:],
        {"role": "assistant", "content": [read | {"input": {"file_path": "hello.txt"}}]},
        _tool_result("toolu_01b", "1\told"),
    )
    reply = SCENARIOS["write"](parse_conversation(after_read))
    assert [block["name"] for block in reply.blocks] == ["Write"]
    assert reply.blocks[0]["input"]["content"] == "hello from taskdeck\n"


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def test_module_prints_its_url_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.demo_model", "--port", "0", "--scenario", "text"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
