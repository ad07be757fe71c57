"""What the runner adds to a Claude Code run: the bare bundled CLI against the STDIO wrapper.

The same scripted 3-turn task (Write a file, Bash `cat` it, answer; the `three_turns` scenario
of worker/demo_model.py, served on 127.0.0.1) is run N times by

  bare:     claude -p "<prompt>" --output-format stream-json --verbose ...
  wrapper:  echo '<spec>' | python -m worker.wrapper   (shim, setsid, rlimits, env allow-list,
            SDK, our events on stdout)

alternately, each run in a fresh directory, after a warm-up run of each. The wrapper is served
by its warm runner (worker/warm_runner.py; the warm-up call starts it); a few runs with the
runner off (TASKDECK_WRAPPER_WARM=0: Python start + importing claude-agent-sdk on every call) are
shown beside. It prints the median and p95 wall time, ratios and differences. Target: the
wrapper adds < 5 % or < 50 ms.

    .venv/bin/python bench/runner_overhead.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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


def wait_for_runner(env: dict[str, str]) -> Path:
    """The pid file of the warm runner the warm-up call started, once it listens."""
    probe = "from worker import warm_runner; print(warm_runner.socket_path())"
    socket_file = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    ).stdout.strip()
    pid_file = Path(socket_file).with_suffix(".pid")
    deadline = time.monotonic() + 60
    while not pid_file.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the warm runner did not start")
        time.sleep(0.05)
    return pid_file


def check(code: int, out: str, needle: str, what: str) -> None:
    if code != 0 or needle not in out or "three turns" not in out:
        raise SystemExit(f"{what} run failed (exit {code}):\n{out[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cold-runs", type=int, default=5)
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
            "TASKDECK_RUNNER_DIR": str(root / "runner"),
        }
        cold_env = {**wrapper_env, "TASKDECK_WRAPPER_WARM": "0"}
        times: dict[str, list[float]] = {"bare": [], "wrapper": [], "cold": []}
        runner_pid = None
        try:
            for index in range(args.runs + 1):  # run 0 warms caches up and is not counted
                for kind in ("bare", "wrapper", "cold"):
                    if kind == "cold" and index > args.cold_runs:
                        continue
                    cwd = root / f"{kind}-{index}"
                    cwd.mkdir()
                    if kind == "bare":
                        elapsed = run_bare(bare_env, cwd)
                    else:
                        env = wrapper_env if kind == "wrapper" else cold_env
                        elapsed = run_wrapper(env, cwd, config)
                    if index:
                        times[kind].append(elapsed)
                if index == 0:
                    runner_pid = int(wait_for_runner(wrapper_env).read_text())
        finally:
            if runner_pid:
                os.kill(runner_pid, signal.SIGTERM)

    bare, wrapped, cold = times["bare"], times["wrapper"], times["cold"]
    print(f"runner overhead: scripted 3-turn task, {args.runs} runs each (wall time, seconds)")
    print(f"{'':16}{'runs':>6}{'median':>10}{'p95':>10}{'min':>10}{'max':>10}")
    rows = (("bare CLI", bare), ("wrapper (warm)", wrapped), ("wrapper (cold)", cold))
    for name, values in rows:
        print(
            f"{name:16}{len(values):6}{statistics.median(values):10.3f}"
            f"{percentile(values, 0.95):10.3f}{min(values):10.3f}{max(values):10.3f}"
        )
    median_ratio = statistics.median(wrapped) / statistics.median(bare)
    p95_ratio = percentile(wrapped, 0.95) / percentile(bare, 0.95)
    added_ms = (statistics.median(wrapped) - statistics.median(bare)) * 1000
    print(f"ratio wrapper/bare: median {median_ratio:.3f}, p95 {p95_ratio:.3f}")
    print(f"wrapper adds {added_ms:+.0f} ms at the median ({(median_ratio - 1) * 100:+.1f} %)")
    cold_ms = (statistics.median(cold) - statistics.median(bare)) * 1000
    print(f"without the warm runner it adds {cold_ms:+.0f} ms (python start + SDK import per call)")
    target = median_ratio < 1.05 or added_ms < 50
    print(f"target (< 5 % or < 50 ms): {'met' if target else 'NOT met'}")


if __name__ == "__main__":
    main()
