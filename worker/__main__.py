"""`python -m worker`: a pool of RQ worker processes (with RQ's scheduler) plus the reconciler.

Each worker names itself host.pid, serves the high, default and low queues in that order, beats
its heartbeat every few seconds (short worker TTL) so a dead worker's job is found and retried.
SIGTERM or SIGINT stops the pool: each worker finishes (warm shutdown) or hands back its job.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import socket
import time

from app.settings import get_settings

log = logging.getLogger("taskdeck.worker")
RECONCILE_EVERY_S = 15


def run_one_worker(burst: bool) -> None:
    """Body of one worker process."""
    from rq import Worker

    from app.queue import all_queues, get_redis

    settings = get_settings()
    os.setpgid(0, 0)  # own group: a signal to the pool's terminal does not hit it twice
    worker = Worker(
        all_queues(get_redis()),
        connection=get_redis(),
        name=f"{socket.gethostname()}.{os.getpid()}",
        worker_ttl=settings.worker_ttl_s,
        maintenance_interval=settings.maintenance_interval_s,
    )
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    from app.db import upgrade_database
    from worker.reconcile import reconcile_once

    settings = get_settings()
    upgrade_database()
    count = args.workers or settings.workers
    context = multiprocessing.get_context("fork")
    processes: list[multiprocessing.Process] = []
    stopping = False

    def spawn() -> multiprocessing.Process:
        process = context.Process(target=run_one_worker, args=(args.burst,), daemon=False)
        process.start()
        return process

    def stop(signum, _frame) -> None:  # noqa: ANN001
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive() and process.pid:
                try:
                    os.kill(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        reconcile_once()
    except Exception:
        log.exception("reconciler failed at start")
    processes.extend(spawn() for _ in range(count))
    log.info("worker pool of %d started (pid %d)", count, os.getpid())
    last_reconcile = time.monotonic()
    while True:
        alive = [p for p in processes if p.is_alive()]
        if stopping or args.burst:
            if not alive:
                break
        else:
            for index, process in enumerate(processes):
                if not process.is_alive():
                    log.warning("worker %s exited (%s): starting another", process.pid,
                                process.exitcode)
                    processes[index] = spawn()
            if time.monotonic() - last_reconcile > RECONCILE_EVERY_S:
                last_reconcile = time.monotonic()
                try:
                    reconcile_once()
                except Exception:
                    log.exception("reconciler failed")
        time.sleep(0.5)
    log.info("worker pool stopped")


if __name__ == "__main__":
    main()
