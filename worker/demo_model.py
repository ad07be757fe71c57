"""A scripted fake of the Anthropic Messages API, for tests and Taskdeck's demo mode.

`DemoModel` serves `POST /v1/messages` on 127.0.0.1 with the real API's wire format (SSE events
`message_start` ... `message_stop`, or a JSON message when `stream` is false), so the real Claude
Code CLI can be pointed at it with `ANTHROPIC_BASE_URL` and run whole agent loops offline: it
calls tools (Write, Read, Bash), gets their results back and finishes, in well under a second.

What it answers is chosen by a *scenario*: a small script in `SCENARIOS`, picked by a
`[scenario:NAME]` marker in the user's prompt (else the server's default, "demo"). The server keeps
no per-conversation state: the step of a script is derived from the request itself (the number of
assistant turns after the latest user prompt), so many conversations can run at once and a resumed
session (full history plus a new prompt) starts the script again for its new prompt.

Markers understood in a prompt:
    [scenario:NAME]  which script answers (see `SCENARIOS`)
    [delay:SECONDS]  pause between streamed text deltas (the `slow` scenario; default 0.1)

A reply streamed slowly (a pause between its deltas) also reports its usage as it goes, as the
real API may: every USAGE_EVERY text or thinking deltas an extra `message_delta` without a stop
reason carries the cumulative `output_tokens` so far; the last `message_delta` has the final count.

Run it by hand with `python -m worker.demo_model --port 8123 [--scenario demo]`.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import select
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

DEFAULT_SCENARIO = "demo"
DEMO_MODEL_LABEL = "Taskdeck demo model"
USAGE_EVERY = 5  # text/thinking deltas between interim usage reports of a slow reply

_MARKER_RE = re.compile(r"\[(scenario|delay):([^\]\s]+)\]")
_REMINDER_RE = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)
# The CLI puts "Primary working directory: /path" in a `system`-role message of `messages`
# (CLI 2.1.x); older versions put "Working directory: /path" in the system prompt.
_CWD_RE = re.compile(r"(?:Primary working directory|Working directory):[ \t]*(/[^\n]*)")
_FILE_EXTENSIONS = (
    "py|md|txt|json|yaml|yml|toml|ini|cfg|csv|html|css|js|mjs|ts|tsx|jsx|sh|rs|go|java|c|h|"
    "cpp|hpp|rb|php|sql|xml|rst|log|env"
)
_FILE_RE = re.compile(
    rf"(?<![\w.\-/])(/?(?:[\w.\-]+/)*[\w\-][\w.\-]*\.(?:{_FILE_EXTENSIONS}))(?![\w/])",
    re.IGNORECASE,
)
_ID_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_MAX_FILE_FLOW_STEPS = 4


# ---------------------------------------------------------------------------------------------
# What a request says about its conversation
# ---------------------------------------------------------------------------------------------


@dataclass
class Conversation:
    """Everything a scenario needs to know about one request, derived from its body alone."""

    model: str
    prompt: str  # the latest user prompt, without system reminders and markers
    step: int  # assistant turns already taken since that prompt
    scenario: str
    markers: dict[str, str]
    cwd: str | None
    last_tool_uses: list[dict[str, Any]]  # tool_use blocks of the latest assistant message
    last_tool_results: list[dict[str, Any]]  # tool_result blocks answering them
    request_chars: int
    has_history: bool  # an assistant message exists anywhere (cache reads, not cache writes)
    attempt_counter: Callable[[str], int] = field(repr=False, default=lambda key: 0)

    def path(self, name: str) -> str:
        """An absolute path for `name` in the working directory (relative if it is unknown)."""
        if name.startswith("/") or not self.cwd:
            return name
        return str(PurePosixPath(self.cwd) / name)

    def attempt(self, key: str = "") -> int:
        """How many earlier requests had the same scenario, prompt and step (0 for the first)."""
        return self.attempt_counter(f"{self.scenario}\0{self.prompt}\0{self.step}\0{key}")

    def tool_errors(self) -> dict[str, str]:
        """The failed results of the latest tool calls: tool_use_id -> error text."""
        return {
            str(result.get("tool_use_id")): _text_of(result.get("content")) or "tool error"
            for result in self.last_tool_results
            if result.get("is_error")
        }


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [block for block in content if isinstance(block, dict)]
    return []


def _text_of(content: Any) -> str:
    return "\n".join(
        str(block.get("text", "")) for block in _blocks(content) if block.get("type") == "text"
    )


def _prompt_of(message: dict[str, Any]) -> str | None:
    """The user's own words in a message; None for tool results and reminder-only messages."""
    if message.get("role") != "user":
        return None
    blocks = _blocks(message.get("content"))
    if any(block.get("type") == "tool_result" for block in blocks):
        return None
    text = _REMINDER_RE.sub("", _text_of(blocks)).strip()
    return text or None


def _find_cwd(body: dict[str, Any]) -> str | None:
    texts = [_text_of(body.get("system"))]
    texts += [_text_of(message.get("content")) for message in body.get("messages") or []]
    for text in texts:
        match = _CWD_RE.search(text)
        if match:
            return match.group(1).strip()
    return None


def parse_conversation(
    body: dict[str, Any],
    default_scenario: str = DEFAULT_SCENARIO,
    request_chars: int = 0,
    attempt_counter: Callable[[str], int] | None = None,
) -> Conversation:
    """Derive the scenario, step and context of a Messages API request body."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    prompt_index, raw_prompt = -1, ""
    for index, message in enumerate(messages):
        prompt = _prompt_of(message)
        if prompt is not None:
            prompt_index, raw_prompt = index, prompt
    after_prompt = messages[prompt_index + 1 :]
    step = sum(1 for message in after_prompt if message.get("role") == "assistant")

    # Markers of the latest prompt win; a resumed "go on" without markers keeps the first one's.
    first_user = next((m for m in messages if m.get("role") == "user"), {})
    first_text = _REMINDER_RE.sub("", _text_of(first_user.get("content")))
    markers = dict(_MARKER_RE.findall(first_text))
    markers.update(_MARKER_RE.findall(raw_prompt))

    last_assistant_index = max(
        (i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1
    )
    last_assistant = messages[last_assistant_index] if last_assistant_index >= 0 else {}
    results = [
        block
        for message in messages[last_assistant_index + 1 :]
        if message.get("role") == "user"
        for block in _blocks(message.get("content"))
        if block.get("type") == "tool_result"
    ]
    return Conversation(
        model=str(body.get("model") or "claude-demo"),
        prompt=_MARKER_RE.sub("", raw_prompt).strip(),
        step=step,
        scenario=markers.get("scenario", default_scenario),
        markers=markers,
        cwd=_find_cwd(body),
        last_tool_uses=[
            b for b in _blocks(last_assistant.get("content")) if b.get("type") == "tool_use"
        ],
        last_tool_results=results,
        request_chars=request_chars or len(json.dumps(body)),
        has_history=any(m.get("role") == "assistant" for m in messages),
        attempt_counter=attempt_counter or (lambda key: 0),
    )


# ---------------------------------------------------------------------------------------------
# Replies and the scenario scripts
# ---------------------------------------------------------------------------------------------


@dataclass
class ApiError:
    status: int
    type: str
    message: str


@dataclass
class Reply:
    """One assistant message to send back (or an error, or a stream that never ends)."""

    blocks: list[dict[str, Any]] = field(default_factory=list)
    words_per_delta: int = 3
    delta_delay_s: float = 0.0
    hang: bool = False
    error: ApiError | None = None

    @property
    def stop_reason(self) -> str:
        if any(block["type"] == "tool_use" for block in self.blocks):
            return "tool_use"
        return "end_turn"


def _new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool(name: str, **tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": _new_id("toolu_01"), "name": name, "input": tool_input}


def thinking(value: str) -> dict[str, Any]:
    signature = base64.b64encode(secrets.token_bytes(96)).decode()
    return {"type": "thinking", "thinking": value, "signature": signature}


Scenario = Callable[[Conversation], Reply]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    """Register a scenario script under `name` (what `[scenario:NAME]` selects)."""

    def register(function: Scenario) -> Scenario:
        SCENARIOS[name] = function
        return function

    return register


def _write_files_flow(conv: Conversation, files: dict[str, str], intro: str, done: str) -> Reply:
    """Write `files` (name -> content) in one turn, then answer `done`.

    Claude Code 2.1.x overwrites an existing file with Write directly; should a CLI refuse
    because the file was not read first, the flow reads the refused files and writes them again.
    """
    paths = {conv.path(name): content for name, content in files.items()}
    if conv.step == 0:
        writes = [tool("Write", file_path=path, content=content) for path, content in paths.items()]
        return Reply([text(intro), *writes])
    errors = conv.tool_errors()
    last_paths = [use["input"].get("file_path") for use in conv.last_tool_uses]
    if conv.step < _MAX_FILE_FLOW_STEPS:
        refused = [
            use["input"]["file_path"]
            for use in conv.last_tool_uses
            if use["name"] == "Write" and "read" in errors.get(use["id"], "").lower()
        ]
        if refused:
            return Reply([tool("Read", file_path=path) for path in refused])
        if last_paths and all(
            use["name"] == "Read" and use["input"].get("file_path") in paths
            for use in conv.last_tool_uses
        ):
            return Reply(
                [tool("Write", file_path=path, content=paths[path]) for path in last_paths]
            )
    if errors:
        details = "; ".join(error.strip() for error in errors.values())
        return Reply([text(f"I could not write everything: {details}")])
    return Reply([text(done)])


def _demo_file_content(name: str, prompt: str) -> str:
    stem, _, extension = PurePosixPath(name).name.partition(".")
    extension = extension.rsplit(".", 1)[-1].lower()
    one_line = " ".join(prompt.split())
    if extension == "py":
        said = re.search(r"\bprints?\s+[\"'`]?(.+?)[\"'`]?\.?\s*$", prompt, re.I | re.M)
        message = said.group(1).strip() if said else f"Hello from {name}"
        return (
            f"# {name}: written by the {DEMO_MODEL_LABEL} for the prompt: {one_line}\n\n\n"
            "def main() -> None:\n"
            f"    print({json.dumps(message)})\n\n\n"
            'if __name__ == "__main__":\n'
            "    main()\n"
        )
    if extension == "md":
        quoted = "\n".join(f"> {line}" for line in prompt.splitlines())
        return f"# {stem}\n\nWritten by the {DEMO_MODEL_LABEL} for the prompt:\n\n{quoted}\n"
    if extension == "json":
        return json.dumps({"written_by": DEMO_MODEL_LABEL, "prompt": prompt}, indent=2) + "\n"
    if extension == "sh":
        return f"#!/bin/sh\n# Written by the {DEMO_MODEL_LABEL}.\necho {json.dumps(one_line)}\n"
    return f"Written by the {DEMO_MODEL_LABEL} for the prompt:\n{prompt}\n"


@scenario("demo")
def demo(conv: Conversation) -> Reply:
    """Writes the file the prompt names (two turns); otherwise answers in one labelled text."""
    named = _FILE_RE.search(conv.prompt)
    if named:
        name = named.group(1)
        content = _demo_file_content(name, conv.prompt)
        lines = content.count("\n")
        done = (
            f"Wrote `{name}` ({lines} lines) in `{conv.cwd or '.'}`.\n\n"
            f"_This answer came from the **{DEMO_MODEL_LABEL}**, a scripted stand-in: "
            "not Claude. Configure an Anthropic API key to run real tasks._"
        )
        return _write_files_flow(conv, {name: content}, f"I'll create `{name}`.", done)
    quoted = "\n".join(f"> {line}" for line in (conv.prompt or "(empty prompt)").splitlines())
    return Reply(
        [
            text(
                f"**{DEMO_MODEL_LABEL}**: a scripted stand-in, not Claude.\n\n"
                f"You asked:\n\n{quoted}\n\n"
                "- No Anthropic API key is configured, so nothing was sent to a real model.\n"
                "- Name a file in the prompt (for example *create hello.py that prints hi*) "
                "and I will write it in the task's working directory.\n"
            )
        ]
    )


@scenario("text")
def text_answer(conv: Conversation) -> Reply:
    """One text answer, streamed in several deltas."""
    return Reply([text("Hello from the scripted model.")], words_per_delta=2)


@scenario("write")
def write_hello(conv: Conversation) -> Reply:
    """Writes hello.txt, then says so."""
    files = {"hello.txt": "hello from taskdeck\n"}
    return _write_files_flow(conv, files, "I'll create `hello.txt`.", "Done: wrote hello.txt")


@scenario("three_turns")
def three_turns(conv: Conversation) -> Reply:
    """Three API turns: Write a.txt, Bash `cat a.txt`, final text."""
    if conv.step == 0:
        return Reply(
            [
                text("Writing `a.txt`."),
                tool("Write", file_path=conv.path("a.txt"), content="three turns\n"),
            ]
        )
    if conv.step == 1:
        return Reply([tool("Bash", command="cat a.txt", description="Show the file")])
    shown = "\n".join(_text_of(r.get("content")) for r in conv.last_tool_results).strip()
    return Reply([text(f"Three turns done. `a.txt` contains: {shown or '(nothing)'}")])


@scenario("thinking")
def thinking_then_text(conv: Conversation) -> Reply:
    """A thinking block (with signature), then text."""
    return Reply(
        [
            thinking("The user wants a short answer. I will reply with one friendly sentence."),
            text("Here is my answer, after some thought."),
        ]
    )


@scenario("slow")
def slow(conv: Conversation) -> Reply:
    """20 text deltas, 0.1 s apart (or `[delay:SECONDS]`)."""
    words = " ".join(f"word{index}" for index in range(1, 21))
    try:
        delay = max(0.0, float(conv.markers.get("delay", 0.1)))
    except ValueError:
        delay = 0.1
    return Reply([text(words)], words_per_delta=1, delta_delay_s=delay)


@scenario("hang")
def hang(conv: Conversation) -> Reply:
    """`message_start`, then silence until the client or the server gives up."""
    return Reply(hang=True)


_ERRORS = {
    400: ("invalid_request_error", "messages: demo scenario error_400 (invalid request)"),
    401: ("authentication_error", "invalid x-api-key"),
    429: ("rate_limit_error", "Number of request tokens has exceeded your rate limit (demo)"),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def _error_scenario(status: int) -> Scenario:
    error_type, message = _ERRORS[status]

    def answer_error(conv: Conversation) -> Reply:
        return Reply(error=ApiError(status, error_type, message))

    answer_error.__doc__ = f"Always HTTP {status} ({error_type})."
    return answer_error


for _status in _ERRORS:
    scenario(f"error_{_status}")(_error_scenario(_status))


@scenario("error_529_then_ok")
def overloaded_then_text(conv: Conversation) -> Reply:
    """529 for the first request of a prompt, then the `text` answer."""
    if conv.attempt() == 0:
        return _error_scenario(529)(conv)
    return text_answer(conv)


@scenario("max_turns")
def endless_tools(conv: Conversation) -> Reply:
    """Always one more tool call, so the run stops at --max-turns."""
    command = f"echo step {conv.step + 1}"
    return Reply([tool("Bash", command=command, description="Print the step number")])


@scenario("edit")
def edit_repository(conv: Conversation) -> Reply:
    """Overwrite README.md and add src/new_file.py in one turn, then summarise."""
    files = {
        "README.md": f"# Demo project\n\nEdited by the {DEMO_MODEL_LABEL}.\n",
        "src/new_file.py": (
            f'"""Added by the {DEMO_MODEL_LABEL}."""\n\n\ndef hello() -> str:\n    return "hello"\n'
        ),
    }
    intro = "Updating `README.md` and adding `src/new_file.py`."
    return _write_files_flow(conv, files, intro, "Updated `README.md` and added `src/new_file.py`.")


# ---------------------------------------------------------------------------------------------
# Wire format
# ---------------------------------------------------------------------------------------------


def _usage(conv: Conversation, reply: Reply) -> dict[str, int]:
    """Plausible token counts: ~4 characters a token, most of the prompt cached."""
    total_in = max(1, conv.request_chars // 4)
    if conv.has_history:
        cache_read, cache_write = total_in * 8 // 10, total_in * 15 // 100
    else:
        cache_read, cache_write = 0, total_in * 8 // 10
    output_chars = sum(
        len(block.get("text") or block.get("thinking") or json.dumps(block.get("input")))
        for block in reply.blocks
    )
    return {
        "input_tokens": max(1, total_in - cache_read - cache_write),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "output_tokens": max(1, output_chars // 4),
    }


def _chunks(value: str, words_per_chunk: int) -> list[str]:
    words = re.findall(r"\S+\s*|\s+", value)
    return [
        "".join(words[i : i + words_per_chunk]) for i in range(0, len(words), words_per_chunk)
    ] or [""]


def _split_evenly(value: str, parts: int) -> list[str]:
    size = max(1, -(-len(value) // parts))
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def _message_envelope(conv: Conversation, message_id: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": conv.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }


def json_message(conv: Conversation, reply: Reply) -> dict[str, Any]:
    """The non-streaming answer: a whole message object."""
    message = _message_envelope(conv, _new_id("msg_01"))
    message["content"] = reply.blocks
    message["stop_reason"] = reply.stop_reason
    message["usage"] = {**_usage(conv, reply), "service_tier": "standard"}
    return message


def sse_events(conv: Conversation, reply: Reply) -> Iterator[tuple[str, dict[str, Any], float]]:
    """The streaming answer as (event type, data, extra pause before it) triples."""
    usage = _usage(conv, reply)
    start = _message_envelope(conv, _new_id("msg_01"))
    start["usage"] = {**usage, "output_tokens": 1, "service_tier": "standard"}
    yield "message_start", {"type": "message_start", "message": start}, 0.0
    if reply.hang:
        return
    streamed = count = 0  # characters and deltas of text/thinking sent so far
    for index, block in enumerate(reply.blocks):
        kind = block["type"]
        if kind == "text":
            opening = {"type": "text", "text": ""}
            deltas = [
                ({"type": "text_delta", "text": piece}, reply.delta_delay_s)
                for piece in _chunks(block["text"], reply.words_per_delta)
            ]
        elif kind == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                ({"type": "thinking_delta", "thinking": piece}, reply.delta_delay_s)
                for piece in _chunks(block["thinking"], reply.words_per_delta)
            ]
            deltas.append(({"type": "signature_delta", "signature": block["signature"]}, 0.0))
        elif kind == "tool_use":
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            deltas = [
                ({"type": "input_json_delta", "partial_json": piece}, 0.0)
                for piece in _split_evenly(json.dumps(block["input"]), 3)
            ]
        else:
            raise ValueError(f"unsupported block type {kind!r}")
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": opening},
            0.0,
        )
        for delta, pause in deltas:
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
                pause,
            )
            streamed += len(delta.get("text") or delta.get("thinking") or "")
            count += 1
            if reply.delta_delay_s > 0 and count % USAGE_EVERY == 0:
                so_far = min(usage["output_tokens"], max(1, streamed // 4))
                yield "message_delta", _usage_delta(None, so_far), 0.0
        yield "content_block_stop", {"type": "content_block_stop", "index": index}, 0.0
    yield "message_delta", _usage_delta(reply.stop_reason, usage["output_tokens"]), 0.0
    yield "message_stop", {"type": "message_stop"}, 0.0


def _usage_delta(stop_reason: str | None, output_tokens: int) -> dict[str, Any]:
    """A `message_delta` event: the stop reason (None while streaming) and the cumulative
    output tokens so far."""
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": output_tokens},
    }


def error_body(error: ApiError) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error.type, "message": error.message},
        "request_id": _new_id("req_011C"),
    }


# ---------------------------------------------------------------------------------------------
# HTTP server
# ---------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    demo: DemoModel


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TaskdeckDemoModel/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def setup(self) -> None:
        super().setup()
        self.server.demo._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.demo._track(self.connection, add=False)
        super().finish()

    # -- plain endpoints ----------------------------------------------------------------------

    def do_HEAD(self) -> None:
        status = 200 if urlsplit(self.path).path == "/" else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/":
            self.do_HEAD()
        else:
            self._send_error(ApiError(404, "not_found_error", f"Not found: {self.path}"))

    def do_POST(self) -> None:
        raw = self._read_body()
        path = urlsplit(self.path).path.rstrip("/")
        if path.endswith("/messages/count_tokens"):
            self._send_json(200, {"input_tokens": 10})
            return
        if not path.endswith("/v1/messages"):
            self._send_error(ApiError(404, "not_found_error", f"Not found: {self.path}"))
            return
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError as exc:
            self._send_error(ApiError(400, "invalid_request_error", f"Invalid JSON body: {exc}"))
            return
        demo = self.server.demo
        demo._record(body)
        conv = parse_conversation(body, demo.default_scenario, len(raw), demo._count_attempt)
        script = SCENARIOS.get(conv.scenario)
        if script is None:
            known = ", ".join(sorted(SCENARIOS))
            message = f"Unknown demo scenario {conv.scenario!r}; known: {known}"
            self._send_error(ApiError(400, "invalid_request_error", message))
            return
        try:
            reply = script(conv)
        except Exception as exc:  # a broken script must not kill the connection silently
            message = f"Demo scenario {conv.scenario!r} failed: {exc!r}"
            self._send_error(ApiError(500, "api_error", message))
            return
        if reply.error:
            self._send_error(reply.error)
        elif body.get("stream"):
            self._stream(conv, reply)
        elif reply.hang:
            self._hold_open()
        else:
            self._send_json(200, json_message(conv, reply))

    # -- helpers ------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", _new_id("req_011C"))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: ApiError) -> None:
        self._send_json(error.status, error_body(error))

    def _stream(self, conv: Conversation, reply: Reply) -> None:
        demo = self.server.demo
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", _new_id("req_011C"))
        self.end_headers()
        try:
            for event, data, pause in sse_events(conv, reply):
                if demo._stopping.wait(demo.delay_s + pause):
                    self.close_connection = True
                    return
                frame = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
                self._write_chunk(frame)
            if reply.hang:
                self._hold_open()
                return
            self._write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _hold_open(self) -> None:
        """Send nothing more until the server stops or the client hangs up."""
        self.close_connection = True
        stopping = self.server.demo._stopping
        while not stopping.is_set():
            try:
                readable, _, _ = select.select([self.connection], [], [], 0.1)
                if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                    return  # the client closed the connection
            except OSError:
                return
            if readable:
                stopping.wait(0.1)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


class DemoModel:
    """The scripted Messages API on a local port; `start()` serves it in a daemon thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        default_scenario: str = DEFAULT_SCENARIO,
        delay_s: float = 0.0,
    ) -> None:
        if default_scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {default_scenario!r}; known: {sorted(SCENARIOS)}")
        self.host = host
        self.port = port
        self.default_scenario = default_scenario
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> DemoModel:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.demo = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="demo-model"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end held streams and drop open connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("DemoModel is not started")
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> DemoModel:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- used by the handler ------------------------------------------------------------------

    def _record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)

    def _count_attempt(self, key: str) -> int:
        with self._lock:
            seen = self._attempts.get(key, 0)
            self._attempts[key] = seen + 1
            return seen

    def _track(self, connection: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM/SIGINT, after printing the URL on one line."""
    parser = argparse.ArgumentParser(
        prog="python -m worker.demo_model", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO, choices=sorted(SCENARIOS))
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between SSE events")
    args = parser.parse_args(argv)

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    model = DemoModel(args.host, args.port, args.scenario, args.delay).start()
    try:
        print(model.url, flush=True)
        while not stop_requested.wait(1.0):
            pass
    finally:
        model.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    main()
