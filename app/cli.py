"""The `taskdeck` command: account administration on this machine, and a small API client.

Local (talks to the database named by TASKDECK_DATABASE_URL):
  taskdeck user create NAME [--role admin|member|viewer]   (password asked, or read from stdin)
  taskdeck user list
  taskdeck token create NAME --name LABEL [--scope read ...]   (prints the token once)

API client (TASKDECK_API_URL, default http://127.0.0.1:3000; token in TASKDECK_TOKEN):
  taskdeck submit "prompt" [--cwd DIR | --repo DIR] [--model M] [--max-turns N] [--follow]
  taskdeck list [--status S] [--limit N]
  taskdeck show ID | cancel ID | retry ID | follow ID

Exit codes: 0 ok (and, with --follow, the task succeeded), 1 the task failed or was cancelled,
2 bad usage or input, 3 the API refused (401/403/404/409/429) or could not be reached.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:3000"
TERMINAL = ("succeeded", "failed", "cancelled")


class CliError(Exception):
    """A failure to report in one line, with the exit code to use."""

    def __init__(self, message: str, code: int = 3) -> None:
        super().__init__(message)
        self.code = code


# ----- local account administration -----------------------------------------------------------


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise CliError("the passwords differ", 2)
    return first


def cmd_user_create(args: argparse.Namespace) -> int:
    from app import auth
    from app.db import upgrade_database

    upgrade_database()
    try:
        user = auth.create_user(args.username, _read_password(args), args.role)
    except auth.AccountError as exc:
        raise CliError(f"{exc.field}: {exc}", 2) from exc
    print(f"created {user.role} {user.username!r} (id {user.id})")
    return 0


def cmd_user_list(_args: argparse.Namespace) -> int:
    from app import auth
    from app.db import upgrade_database

    upgrade_database()
    for user in auth.list_users():
        state = "active" if user.is_active else "disabled"
        print(f"{user.id:>4}  {user.username:<24} {user.role:<7} {state}")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from sqlmodel import select

    from app import auth
    from app.db import session_scope, upgrade_database
    from app.models import User

    upgrade_database()
    with session_scope() as session:
        user = session.exec(select(User).where(User.username == args.username)).first()
    if user is None:
        raise CliError(f"no user {args.username!r}", 2)
    try:
        secret, token = auth.create_token(user, args.name, args.scope, args.expires_in_days)
    except auth.AccountError as exc:
        raise CliError(f"{exc.field}: {exc}", 2) from exc
    print(
        f"token {token.name!r} ({', '.join(token.scopes)}), shown once, store it now:",
        file=sys.stderr,
    )
    print(secret)
    return 0


# ----- API client -----------------------------------------------------------------------------


def client(args: argparse.Namespace) -> httpx.Client:
    """An HTTP client for the API with the token from --token / TASKDECK_TOKEN."""
    token = args.token or os.environ.get("TASKDECK_TOKEN")
    if not token:
        raise CliError(
            "no API token: set TASKDECK_TOKEN (create one with `taskdeck token create`)", 2
        )
    url = (args.url or os.environ.get("TASKDECK_API_URL") or DEFAULT_URL).rstrip("/")
    return httpx.Client(
        base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """One API call; CliError with the API's own message on an error answer."""
    try:
        response = http.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the API at {http.base_url}: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        raise CliError(
            f"{response.status_code}: {_error_text(response)}",
            2 if response.status_code == 422 else 3,
        )
    return response.json() if response.content else None


def _error_text(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:200]
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(map(str, d['loc'][1:]))}: {d['msg']}" for d in detail)
    if response.status_code == 429:
        return f"{detail} (retry after {response.headers.get('Retry-After', '?')} s)"
    return str(detail)


def sse_events(http: httpx.Client, task_id: int, after: str | None = None) -> Iterator[dict]:
    """The task's events from the live stream, until the task ends."""
    params = {"after": after} if after else {}
    try:
        with http.stream(
            "GET",
            f"/tasks/{task_id}/events/stream",
            params=params,
            timeout=httpx.Timeout(30, read=None),
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise CliError(f"{response.status_code}: {_error_text(response)}")
            kind, data = None, []
            for line in response.iter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    event = json.loads("\n".join(data))
                    event.setdefault("type", kind)
                    yield event
                    kind, data = None, []
    except httpx.HTTPError as exc:
        raise CliError(f"the event stream broke: {type(exc).__name__}") from exc


def describe(event: dict) -> str | None:
    """One terminal line for an event (None for token-level deltas)."""
    kind = event.get("type")
    if kind == "status":
        reason = f" ({event['reason']})" if event.get("reason") else ""
        return f"[{event['status']}]{reason}"
    if kind in ("text", "thinking", "prompt"):
        prefix = {"text": "", "thinking": "(thinking) ", "prompt": "> "}[kind]
        return prefix + event.get("text", "")
    if kind == "tool_use":
        args = json.dumps(event.get("input", {}), ensure_ascii=False)
        return f"-> {event.get('name')} {args[:200]}"
    if kind == "tool_result":
        mark = "error" if event.get("is_error") else "ok"
        return f"<- {mark}: {event.get('output', '')[:200]}"
    if kind == "progress":
        return f"turn {event.get('turn')}/{event.get('max_turns')}"
    if kind == "result":
        return (
            f"result: {'error' if event.get('is_error') else 'done'} in "
            f"{event.get('num_turns')} turns, ${event.get('cost_usd', 0):.4f}, "
            f"{event.get('input_tokens', 0)} in / {event.get('output_tokens', 0)} out tokens"
        )
    if kind == "error":
        return f"error ({event.get('kind')}): {event.get('message')}"
    if kind == "api_retry":
        return f"API retry {event.get('retry')}/{event.get('max_retries')}: {event.get('error')}"
    if kind == "diff":
        files = event.get("files_changed")
        return (
            f"diff: {files} file{'' if files == 1 else 's'}, +{event.get('lines_added')} "
            f"-{event.get('lines_removed')}"
        )
    if kind in ("text_delta", "stderr", "usage"):  # typing, noise, running counts: not printed
        return None
    return f"[{kind}]"


def follow(http: httpx.Client, task_id: int) -> int:
    """Print the task's events until it ends; the exit code tells how it ended."""
    for event in sse_events(http, task_id):
        line = describe(event)
        if line is not None:
            print(line, flush=True)
    task = call(http, "GET", f"/tasks/{task_id}")
    print(
        f"task {task_id} {task['status']}"
        + (f": {task['status_reason']}" if task.get("status_reason") else "")
    )
    return 0 if task["status"] == "succeeded" else 1


def cmd_submit(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"prompt": args.prompt, "priority": args.priority}
    for key in ("cwd", "repo", "model", "max_turns"):
        value = getattr(args, key)
        if value is not None:
            body[key] = value
    with client(args) as http:
        task = call(http, "POST", "/tasks", json=body)
        print(
            f"task {task['id']} queued ({task['model']}, {task['priority']} priority)", flush=True
        )
        return follow(http, task["id"]) if args.follow else 0


def cmd_list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.status:
        params["status"] = args.status
    with client(args) as http:
        page = call(http, "GET", "/tasks", params=params)
    for task in page["items"]:
        print(
            f"{task['id']:>7}  {task['status']:<10} {task['priority']:<7} "
            f"${task['cost_usd']:.4f}  {task['title'][:70]}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with client(args) as http:
        print(json.dumps(call(http, "GET", f"/tasks/{args.task_id}"), indent=2))
    return 0


def _action(name: str):  # noqa: ANN202
    def run(args: argparse.Namespace) -> int:
        with client(args) as http:
            task = call(http, "POST", f"/tasks/{args.task_id}/{name}")
        print(f"task {task['id']} {task['status']}")
        return 0

    return run


def cmd_follow(args: argparse.Namespace) -> int:
    with client(args) as http:
        return follow(http, args.task_id)


def parser() -> argparse.ArgumentParser:
    """The command line of `taskdeck`."""
    top = argparse.ArgumentParser(prog="taskdeck", description="Taskdeck from the terminal.")
    sub = top.add_subparsers(dest="command", required=True)

    user = sub.add_parser("user", help="accounts on this machine's database").add_subparsers(
        dest="user_command", required=True
    )
    create = user.add_parser("create", help="create an account (the first admin, for one)")
    create.add_argument("username")
    create.add_argument("--role", choices=["admin", "member", "viewer"], default="admin")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin (else asked twice)",
    )
    create.set_defaults(run=cmd_user_create)
    user.add_parser("list", help="list accounts").set_defaults(run=cmd_user_list)

    token = sub.add_parser("token", help="API tokens on this machine's database").add_subparsers(
        dest="token_command", required=True
    )
    tcreate = token.add_parser("create", help="create an API token for a user (shown once)")
    tcreate.add_argument("username")
    tcreate.add_argument("--name", required=True, help="a label to recognise the token")
    tcreate.add_argument(
        "--scope",
        action="append",
        choices=["read", "write", "admin"],
        help="repeat for several (default: all the role allows)",
    )
    tcreate.add_argument("--expires-in-days", type=int)
    tcreate.set_defaults(run=cmd_token_create)

    def api_command(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--url", help=f"the Taskdeck URL (TASKDECK_API_URL, {DEFAULT_URL})")
        command.add_argument("--token", help="API token (better: TASKDECK_TOKEN)")
        return command

    submit = api_command("submit", "submit a task")
    submit.add_argument("prompt")
    submit.add_argument("--cwd")
    submit.add_argument("--repo")
    submit.add_argument("--model")
    submit.add_argument("--max-turns", type=int)
    submit.add_argument("--priority", choices=["high", "default", "low"], default="default")
    submit.add_argument("-f", "--follow", action="store_true", help="print events until it ends")
    submit.set_defaults(run=cmd_submit)

    listing = api_command("list", "list tasks, newest first")
    listing.add_argument("--status", choices=["queued", "running", *TERMINAL])
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(run=cmd_list)

    for name, run, text in (
        ("show", cmd_show, "a task as JSON"),
        ("cancel", _action("cancel"), "cancel a task"),
        ("retry", _action("retry"), "retry a task"),
        ("follow", cmd_follow, "print a task's events until it ends"),
    ):
        command = api_command(name, text)
        command.add_argument("task_id", type=int)
        command.set_defaults(run=run)
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `taskdeck` console script."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except CliError as exc:
        print(f"taskdeck: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
