"""What the runner adds to a Claude Code run: the bare bundled CLI against the STDIO wrapper.

The same scripted 3-turn task (Write a file, Bash `cat` it, answer; the `three_turns` scenario
of worker/demo_model.py, served on 127.0.0.1) is run N times by

  bare:     claude -p "<prompt>" --output-format stream-json --verbose ...
  wrapper:  echo '<spec>' | python -m worker.wrapper   (shim, setsid, rlimits, env allow-list,
            SDK, our events on stdout)

alternately, each run in a fresh directory, after a warm-up run of each. It prints the median
and p95 wall time of both, their ratio and difference. Target: the wrapper adds < 5 % or < 50 ms.

    .venv/bin/python bench/runner_overhead.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.demo_model import DemoModel  # noqa: E402
from worker.sandbox import bundled_claude  # noqa: E402

PROMPT = "Write a.txt, show it, and tell me what it says [scenario:three_turns]"
TOOLS = ["Write", "Bash"]


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of `values`."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def run_bare(env: dict[str, str], cwd: Path) -> float:
    args = [
        str(bundled_claude()),
        "-p",
        PROMPT,
        "--output-format",
        "stream-json",
        "--verbose",
        "--max-turns",
        "5",
        "--permission-mode",
        "acceptEdits",
        "--allowedTools",
        ",".join(TOOLS),
    ]
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    check(done.returncode, done.stdout, '"type":"result"', "bare CLI")
    return elapsed


def run_wrapper(env: dict[str, str], cwd: Path, config_dir: Path) -> float:
    spec = {
        "prompt": PROMPT,
        "cwd": str(cwd),
        "max_turns": 5,
        "allowed_tools": TOOLS,
        "config_dir": str(config_dir),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "worker.wrapper"],
        cwd=ROOT,
        env=env,
        input=json.dumps(spec),
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    check(done.returncode, done.stdout, '"status":"succeeded"', "wrapper")
    return elapsed


def time_imports() -> float:
    """Wall time of a python that only imports what the wrapper imports, then exits (as the
    wrapper does, without the interpreter's teardown)."""
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, worker.wrapper, worker.claude_code, claude_agent_sdk; os._exit(0)",
        ],
        cwd=ROOT,
        check=True,
    )
    return time.perf_counter() - started


def check(code: int, out: str, needle: str, what: str) -> None:
    if code != 0 or needle not in out or "three turns" not in out:
        raise SystemExit(f"{what} run failed (exit {code}):\n{out[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    with DemoModel() as model, tempfile.TemporaryDirectory(prefix="taskdeck-bench-") as tmp:
        root = Path(tmp)
        config = root / "config"
        config.mkdir()
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ANTHROPIC_BASE_URL": model.url,
            "ANTHROPIC_API_KEY": "bench-key",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        }
        bare_env = {**base, "HOME": str(config), "CLAUDE_CONFIG_DIR": str(config)}
        wrapper_env = {
            **base,
            "TASKDECK_CLAUDE_CONFIG_ROOT": str(root / "claude-root"),
            "TASKDECK_WORKSPACE_ROOT": str(root / "workspaces"),
        }
        times: dict[str, list[float]] = {"bare": [], "wrapper": []}
        for index in range(args.runs + 1):  # run 0 warms caches up and is not counted
            for kind in ("bare", "wrapper"):
                cwd = root / f"{kind}-{index}"
                cwd.mkdir()
                if kind == "bare":
                    elapsed = run_bare(bare_env, cwd)
                else:
                    elapsed = run_wrapper(wrapper_env, cwd, config)
                if index:
                    times[kind].append(elapsed)

        imports = [time_imports() for _ in range(5)]

    bare, wrapped = times["bare"], times["wrapper"]
    print(f"runner overhead: scripted 3-turn task, {args.runs} runs each (wall time, seconds)")
    print(f"{'':10}{'median':>10}{'p95':>10}{'min':>10}{'max':>10}")
    for name, values in (("bare CLI", bare), ("wrapper", wrapped)):
        print(
            f"{name:10}{statistics.median(values):10.3f}{percentile(values, 0.95):10.3f}"
            f"{min(values):10.3f}{max(values):10.3f}"
        )
    median_ratio = statistics.median(wrapped) / statistics.median(bare)
    p95_ratio = percentile(wrapped, 0.95) / percentile(bare, 0.95)
    added_ms = (statistics.median(wrapped) - statistics.median(bare)) * 1000
    print(f"ratio wrapper/bare: median {median_ratio:.3f}, p95 {p95_ratio:.3f}")
    print(f"wrapper adds {added_ms:+.0f} ms at the median ({(median_ratio - 1) * 100:+.1f} %)")
    print(
        f"of which: python start + importing the runner and claude-agent-sdk "
        f"{statistics.median(imports) * 1000:.0f} ms (median of 5)"
    )
    target = median_ratio < 1.05 or added_ms < 50
    print(f"target (< 5 % or < 50 ms): {'met' if target else 'NOT met'}")


if __name__ == "__main__":
    main()
