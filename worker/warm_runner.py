"""The warm runner behind `python -m worker.wrapper`: a long-lived process that has imported
claude-agent-sdk and the runner once, and forks one child per run.

Importing the SDK takes ~0.5 s of CPU (it imports the whole MCP package); paid by every wrapper
call, that was most of a short run. So the wrapper is a thin client (standard library only): it
connects to this process's Unix socket and hands over its stdin, stdout and stderr (SCM_RIGHTS),
its environment and working directory. The runner forks; the child makes those its own and runs
the spec exactly as the wrapper would in-process (worker/stdio.py), then sends back the exit
code. Events go from the child straight to the caller's stdout: nothing is relayed.

- The first call finds no runner: it starts one (detached, in its own session) and runs its own
  spec in-process; later calls are served warm. A runner exits after TASKDECK_RUNNER_IDLE_S
  (default 600) seconds without a request; running children are not affected.
- The socket's name carries a digest of the interpreter, the code's place and the modification
  times of the sources it preloads: changed code gets a new runner, the old one idles out.
- Only the same user gets in: the directory (TASKDECK_RUNNER_DIR, default
  $XDG_RUNTIME_DIR/taskdeck-runner or /tmp/taskdeck-runner-<uid>) must be theirs and 0700, and
  the runner checks the peer's uid (SO_PEERCRED).
- SIGTERM / SIGINT to the wrapper are passed to the child, which cancels the run as the
  in-process wrapper would (claude's group killed, exit 130). If the wrapper dies (even SIGKILL),
  the child sees the connection close and cancels the same way.
- TASKDECK_WRAPPER_WARM=0 turns it off: every call runs in its own process.

    python -m worker.warm_runner serve SOCKET   (started by the wrapper; not by hand)
"""

from __future__ import annotations

# The wrapper's side runs on every call: standard library only, and of that only what imports
# fast. _socket and _signal are what socket and signal wrap (those two build enums at import:
# ~5 ms); no pathlib (~5 ms), no json (marshal: the runner runs this very interpreter).
import _signal
import _socket
import array
import marshal
import os
import stat
import struct
import sys
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUMBER = struct.Struct("!i")  # the request's length, the child's pid, its exit code
MAX_REQUEST_BYTES = 4 * 2**20
# What a run imports, loaded before the first fork so a child imports nothing.
PRELOAD = (
    "worker.stdio",
    "worker.claude_code",
    "claude_agent_sdk",
    "claude_agent_sdk._internal.transport.subprocess_cli",
    "claude_agent_sdk._internal.message_parser",
    "anyio._backends._asyncio",
    "concurrent.futures.thread",
)
# The runner's own environment: enough to start Python. Each child takes its caller's whole
# environment; the runner keeps no caller's secrets (nor paths) in its own.
RUNNER_ENV = ("PATH", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "TASKDECK_RUNNER_IDLE_S")
_lock = None  # the runner's lock file (one runner per socket)


# --- the wrapper's side ------------------------------------------------------------------------


def runner_dir() -> str | None:
    """The directory of the runner sockets, made if missing; None if it is not safely ours."""
    path = os.environ.get("TASKDECK_RUNNER_DIR")
    if not path and os.environ.get("XDG_RUNTIME_DIR"):
        path = os.path.join(os.environ["XDG_RUNTIME_DIR"], "taskdeck-runner")
    path = path or f"/tmp/taskdeck-runner-{os.getuid()}"
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    mine = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
    return path if mine and not info.st_mode & 0o077 else None


def code_digest() -> str:
    """Names the code a runner serves: the interpreter, the sources and the SDK it preloads."""
    parts = [sys.executable, ROOT]
    for package in ("worker", "app"):
        with os.scandir(os.path.join(ROOT, package)) as entries:
            for entry in sorted(entries, key=lambda entry: entry.name):
                if entry.name.endswith(".py"):
                    info = entry.stat()
                    parts += [entry.name, str(info.st_mtime_ns), str(info.st_size)]
    for place in sys.path:
        sdk = os.path.join(place or ".", "claude_agent_sdk", "__init__.py")
        if os.path.isfile(sdk):
            parts.append(str(os.stat(sdk).st_mtime_ns))
            break
    text = "\0".join(parts).encode()
    return f"{zlib.crc32(text):08x}{zlib.adler32(text):08x}"


def socket_path() -> str | None:
    """The socket of the runner for this code, or None when the warm runner is off."""
    if os.environ.get("TASKDECK_WRAPPER_WARM", "1").lower() in ("0", "false", "no", "off"):
        return None
    directory = runner_dir()
    return os.path.join(directory, f"runner-{code_digest()}.sock") if directory else None


def run_via_runner() -> int | None:
    """Have the warm runner run the spec on our stdin; its exit code, or None when no runner
    took the run (then stdin is untouched and the caller runs the spec itself)."""
    path = socket_path()
    if path is None:
        return None
    connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            connection.connect(path)
        except OSError:
            start_runner(path)
            return None
        request = marshal.dumps({"cwd": os.getcwd(), "env": dict(os.environ)})
        stdio = array.array("i", [0, 1, 2])
        try:
            connection.sendmsg(
                [NUMBER.pack(len(request))], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, stdio)]
            )
            connection.sendall(request)
            child = _read_number(connection)
        except OSError:
            child = None
        if child is None:
            return None  # the runner went away before it forked: run it here
        previous = {
            signum: _signal.signal(signum, lambda signum, _frame: _forward(child, signum))
            for signum in (_signal.SIGTERM, _signal.SIGINT)
        }
        try:
            code = _read_number(connection)
        except OSError:
            code = None
        finally:
            for signum, handler in previous.items():
                _signal.signal(signum, handler)
    finally:
        connection.close()
    if code is None:
        _report_lost_child()
        return 1
    return code


def _read_number(connection: _socket.socket) -> int | None:
    """The next number the runner sends (the child's pid, then the exit code); None at EOF."""
    data = b""
    while len(data) < NUMBER.size:
        chunk = connection.recv(NUMBER.size - len(data))
        if not chunk:
            return None
        data += chunk
    return NUMBER.unpack(data)[0]


def _forward(child: int, signum: int) -> None:
    try:
        os.kill(child, signum)
    except ProcessLookupError:
        pass


def _report_lost_child() -> None:
    """The child died without an exit code (killed from outside): say so in the event schema."""
    import json
    import time

    now = time.time()
    message = "the runner process died before the run ended"
    lines = [
        {"ts": now, "attempt": 1, "type": "error", "kind": "runner_lost", "message": message},
        {"ts": now, "attempt": 1, "type": "status", "status": "failed", "reason": message},
    ]
    try:
        sys.stdout.write("".join(json.dumps(line) + "\n" for line in lines))
        sys.stdout.flush()
    except OSError:
        pass


def start_runner(path: str) -> None:
    """Start a runner for `path` in the background (a second one started at once bows out)."""
    import subprocess

    try:
        with open(path.removesuffix(".sock") + ".log", "ab") as errors:
            subprocess.Popen(
                [sys.executable, "-m", "worker.warm_runner", "serve", path],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
                env={key: os.environ[key] for key in RUNNER_ENV if key in os.environ},
            )
    except OSError:
        pass  # no runner: every call runs in-process, as before


# --- the runner's side -------------------------------------------------------------------------


def serve(socket_file: str, idle_s: float) -> None:
    """Accept runs on `socket_file` until `idle_s` pass without one (or another runner owns it)."""
    import fcntl
    import gc
    import importlib
    import signal
    import socket
    from pathlib import Path

    path = Path(socket_file)
    global _lock
    _lock = open(path.with_suffix(".lock"), "w")  # noqa: SIM115 - held for the runner's life
    try:
        fcntl.flock(_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another runner serves this code
    for module in PRELOAD:
        importlib.import_module(module)
    gc.freeze()  # a child's collections must not touch (and so copy) the preloaded objects
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    listener.settimeout(idle_s)
    path.with_suffix(".pid").write_text(f"{os.getpid()}\n")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))  # clean up on stop
    try:
        while True:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                break
            with connection:
                try:
                    _start_child(connection, listener)
                except (OSError, ValueError) as exc:
                    print(f"warm runner: request refused: {exc}", file=sys.stderr, flush=True)
    finally:
        path.unlink(missing_ok=True)  # new callers start a new runner
        listener.close()
        path.with_suffix(".pid").unlink(missing_ok=True)


def _start_child(connection: _socket.socket, listener: _socket.socket) -> None:
    """Read one request and fork the child that runs it."""
    import socket

    connection.settimeout(5)
    credentials = connection.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
    )
    _pid, uid, _gid = struct.unpack("3i", credentials)
    if uid != os.getuid():
        raise ValueError(f"a process of uid {uid} may not use this runner")
    header, fds, _flags, _addr = socket.recv_fds(connection, NUMBER.size, 3)
    try:
        if len(header) != NUMBER.size or len(fds) != 3:
            raise ValueError("a request needs its length and three file descriptors")
        (size,) = NUMBER.unpack(header)
        if size > MAX_REQUEST_BYTES:
            raise ValueError(f"a request of {size} bytes")
        body = b""
        while len(body) < size:
            chunk = connection.recv(size - len(body))
            if not chunk:
                raise ValueError("the request ended early")
            body += chunk
        request = marshal.loads(body)
        if os.fork() == 0:
            _run_child(connection, listener, fds, request)
    finally:
        for fd in fds:
            os.close(fd)


def _run_child(
    connection: _socket.socket, listener: _socket.socket, fds: list[int], request: dict
) -> None:
    """In the forked child: become the wrapper's process for this run, run it, report, exit."""
    import signal

    code = 1
    try:
        listener.close()
        _lock.close()  # the lock is the runner's: a child outliving it must not keep it
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # asyncio waits for claude itself
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        from app.settings import get_settings

        get_settings.cache_clear()
        import threading

        connection.settimeout(None)
        connection.sendall(NUMBER.pack(os.getpid()))
        threading.Thread(target=_cancel_when_caller_leaves, args=(connection,), daemon=True).start()
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        from worker import stdio

        code = stdio.main()
        try:
            sys.stdout.flush()
        except OSError:
            pass  # the reader went away (the run was cancelled for it)
        connection.sendall(NUMBER.pack(code))
    except BaseException as exc:  # noqa: BLE001 - the child must always end in os._exit
        try:
            print(f"warm runner child: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        except OSError:
            pass
    finally:
        os._exit(code)


def _cancel_when_caller_leaves(connection: _socket.socket) -> None:
    """The wrapper never writes after its request: end of file means it is gone (even after a
    SIGKILL), and the run is cancelled as a SIGTERM to the wrapper would cancel it."""
    try:
        while connection.recv(64):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), _signal.SIGTERM)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "serve":
        sys.exit("usage: python -m worker.warm_runner serve SOCKET")
    serve(sys.argv[2], float(os.environ.get("TASKDECK_RUNNER_IDLE_S", "600")))
