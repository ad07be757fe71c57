"""The STDIO interface of the runner: `python -m worker.wrapper`.

Reads ONE JSON task spec on stdin (the fields of `worker.claude_code.RunSpec`: prompt, cwd or
repo + base_ref, model, max_turns, allowed_tools, disallowed_tools, permission_mode,
system_prompt_append, resume, timeout_s, idle_timeout_s, env_allowlist, ...), runs it through
`run_claude` -- the same code path as the RQ job -- and writes one JSON event per line on stdout
in Taskdeck's event schema (app/events.py, docs/events.md). The last line is a `status` event
with the outcome: succeeded, failed, timed_out or cancelled.

Exit codes:
    0    succeeded
    1    failed (claude reported an error, the CLI crashed, the workspace could not be made, ...)
    2    bad spec (one `error` event of kind "bad_spec" names the field; nothing was run)
    124  timed out (wall-clock or idle timeout)
    130  cancelled (SIGTERM or SIGINT to the wrapper; claude's process group is killed first)

Example:
    echo '{"prompt": "Write hello.txt", "cwd": "/tmp/work"}' | python -m worker.wrapper

This module is only the door and imports nothing but the standard library: the run itself
(worker/stdio.py) happens in a child of the warm runner (worker/warm_runner.py), which has
claude-agent-sdk imported already, or -- when there is no runner yet, or with
TASKDECK_WRAPPER_WARM=0 -- in this process.
"""

from __future__ import annotations

import os
import sys

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_SPEC = 2
EXIT_TIMEOUT = 124
EXIT_CANCELLED = 130
EXIT_CODES = {
    "succeeded": EXIT_OK,
    "failed": EXIT_FAILED,
    "timed_out": EXIT_TIMEOUT,
    "cancelled": EXIT_CANCELLED,
}


def main() -> int:
    """Run the spec on stdin through the warm runner, else in this process; the exit code."""
    from worker import warm_runner

    code = warm_runner.run_via_runner()
    if code is not None:
        return code
    from worker import stdio

    return stdio.main()


if __name__ == "__main__":
    code = main()
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass  # the reader went away (the run was cancelled for it)
    # claude's group is dead and every event is written: skip the interpreter's teardown
    # (~0.1 s of finalizers after the SDK's imports) so the exit code comes at once.
    os._exit(code)
