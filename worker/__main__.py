"""`python -m worker`: a pool of RQ worker processes, plus the engine's housekeeping.

Each worker (TaskdeckWorker) names itself host.pid, serves the high, default and low queues in
that order, skips paused queues, makes a job of a repository take a global slot before it runs
(app.queue.pass_global_gate) and gives it back when the run ends, and beats its heartbeat
every `job_monitoring_interval_s` while a job runs, so the job of a worker killed with SIGKILL
is found abandoned (and retried or failed, "worker lost") within
`job_monitoring_interval_s + heartbeat_grace_s + maintenance_interval_s`.
Its work horse dies with it (PR_SET_PDEATHSIG), so a lost worker never leaves a run behind.

The pool process itself runs, on every host, under Redis locks so one host does each at a time:
RQ's scheduler (delayed retries), RQ's registry maintenance (abandoned jobs, leaked rate-limit
slots), the reconciler (worker/reconcile.py), the schedules (worker/scheduler.py), the metrics
sampler, and the parking of rate-limited jobs released into paused queues
(app.queue.settle_paused_queues).
SIGTERM or SIGINT stops the pool: each worker finishes (warm shutdown) or hands back its job.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable

import redis as redis_lib
from rq import Worker
from rq.exceptions import DequeueTimeout
from rq.registry import clean_registries
from rq.worker import WorkerStatus
from rq.worker_registration import clean_worker_registry

from app.settings import get_settings
from worker.graceful import GracefulShutdown, worker_name

log = logging.getLogger("taskdeck.worker")
PAUSE_POLL_S = 2  # a worker re-reads the paused queues at least this often while idle
MAINTENANCE_LOCK = "taskdeck:maintenance:lock"
PR_SET_PDEATHSIG = 1


def clean_queues(connection: redis_lib.Redis, worker: Worker | None = None) -> bool:
    """RQ's registry maintenance of our queues (abandoned jobs are retried or failed here),
    by one process at a time; the lock is short so a holder killed mid-way blocks no one long.
    """
    from app.queue import all_queues

    ttl = max(10, 2 * get_settings().maintenance_interval_s)
    if not connection.set(MAINTENANCE_LOCK, os.getpid(), nx=True, ex=ttl):
        return False
    try:
        for queue in all_queues(connection):
            clean_registries(queue, worker._exc_handlers if worker else None)
            clean_worker_registry(queue)
            if worker is not None:
                queue.intermediate_queue.cleanup(worker, queue)
    finally:
        connection.delete(MAINTENANCE_LOCK)
    return True


class TaskdeckWorker(GracefulShutdown, Worker):
    """RQ's fork worker with four changes: paused queues are skipped, a job of a repository also
    takes a global slot (the second gate) before it runs, the work horse dies with its worker, and
    a running job's heartbeat lapses `heartbeat_grace_s` after the worker died (RQ's default is
    60 s on top of the monitoring interval)."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self._worker_pid = os.getpid()

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:  # noqa: ANN001
        grace = get_settings().heartbeat_grace_s
        interval = self.job_monitoring_interval
        if job.timeout and job.timeout > 0:
            interval = min(job.timeout - working_time, interval)
        return int(interval) + grace

    def main_work_horse(self, job, queue) -> None:  # noqa: ANN001
        # The horse runs the job; if its worker is SIGKILLed it must not go on unsupervised
        # (nobody would beat its heartbeat, and a retry would run beside it).
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            log.warning("could not tie the work horse to its worker (prctl)")
        if os.getppid() != self._worker_pid:  # the worker died before prctl took effect
            os._exit(1)
        super().main_work_horse(job, queue)

    def execute_job(self, job, queue) -> None:  # noqa: ANN001
        # Every ending passes here (success, failure, retry, cancel, timeout, hand-back); a
        # worker killed outright leaves it to RQ's maintenance, which frees stale slots.
        from app.queue import release_global_gate

        try:
            super().execute_job(job, queue)
        finally:
            try:
                release_global_gate(job, self.connection)
            except Exception:  # Redis away: the maintenance frees the slot
                self.log.exception("Worker %s: could not release the global slot", self.name)

    def clean_registries(self) -> None:
        clean_queues(self.connection, self)
        self.last_cleaned_at = _utcnow()

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None):  # noqa: ANN201
        """RQ's dequeue loop, re-reading the paused queues every PAUSE_POLL_S seconds."""
        from app.queue import pass_global_gate, paused_queue_names

        self.set_state(WorkerStatus.IDLE)
        self.procline("Listening on " + ",".join(self.queue_names()))
        wait_s = 1.0
        while True:
            try:
                self.heartbeat()
                if self.should_run_maintenance_tasks:
                    self.run_maintenance_tasks()
                paused = paused_queue_names(self.connection)
                open_queues = [q for q in self._ordered_queues if q.name not in paused]
                if not open_queues:
                    if timeout is None:  # burst: nothing to do
                        return None
                    time.sleep(PAUSE_POLL_S)
                    continue
                block = None if timeout is None else max(1, min(timeout, PAUSE_POLL_S))
                result = self.queue_class.dequeue_any(
                    open_queues,
                    block,
                    connection=self.connection,
                    job_class=self.job_class,
                    serializer=self.serializer,
                    death_penalty_class=self.death_penalty_class,
                )
                if result is None:
                    return None
                job, queue = result
                if queue.name in paused_queue_names(self.connection):  # paused meanwhile
                    queue.push_job_id(job.id, at_front=True)
                    queue.intermediate_queue.remove(job.id)
                    continue
                if not pass_global_gate(job, queue, self.connection):  # back when a slot frees
                    self.log.info("Worker %s: %s waits for a global slot", self.name, job.id)
                    continue
                job.redis_server_version = self.get_redis_server_version()
                self.log.info("Worker %s: %s: %s", self.name, queue.name, job.id)
                self.heartbeat()
                return job, queue
            except DequeueTimeout:
                continue
            except (redis_lib.exceptions.ConnectionError, redis_lib.exceptions.TimeoutError) as exc:
                self.log.error(
                    "Worker %s: Redis unreachable (%s), retrying in %.0fs", self.name, exc, wait_s
                )
                time.sleep(wait_s)
                wait_s = min(wait_s * 2, 30.0)


def without_maintenance_lines(record: logging.LogRecord) -> bool:
    """RQ logs each registry maintenance at INFO ("Worker ...: cleaning group registries"); it
    runs every `maintenance_interval_s` (5 s), which filled `make run`'s output with nothing
    else. A filter on RQ's worker log drops those lines and keeps the rest."""
    return not str(record.msg).startswith("Worker %s: cleaning ")


def _utcnow():  # noqa: ANN202
    from rq.utils import now

    return now()


def run_one_worker(burst: bool) -> None:
    """Body of one worker process."""
    # The pool's SIGTERM handler came with the fork; until RQ installs its own in work(), a stop
    # must simply end this process (it has no job yet), not be swallowed.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from app.queue import all_queues, get_redis

    settings = get_settings()
    pool_pid = os.getppid()
    os.setpgid(0, 0)  # own group: a signal to the pool's terminal does not hit it twice
    # A worker outlives no pool: if the pool is SIGKILLed (a lost host, a crash) the kernel
    # sends SIGTERM here, and the worker hands back its job (graceful shutdown) and exits.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        log.warning("could not tie the worker to its pool (prctl)")
    if os.getppid() != pool_pid:  # the pool died before prctl took effect
        os._exit(1)
    import worker.jobs  # noqa: F401  (loaded once here, not in every work horse: ~0.4 s a job)

    worker = TaskdeckWorker(
        all_queues(get_redis()),
        connection=get_redis(),
        name=worker_name(),  # host.pid; TASKDECK_WORKER_HOST names the host
        worker_ttl=settings.worker_ttl_s,
        maintenance_interval=settings.maintenance_interval_s,
        job_monitoring_interval=settings.job_monitoring_interval_s,
    )
    logging.getLogger("rq.worker").addFilter(without_maintenance_lines)
    worker.work(burst=burst, with_scheduler=False, logging_level="INFO")


class Every:
    """Runs a housekeeping step every `interval_s` seconds; a failure is logged, never raised."""

    def __init__(self, name: str, interval_s: float, step: Callable[[], object]) -> None:
        self.name, self.interval_s, self.step = name, interval_s, step
        self.last = 0.0

    def __call__(self) -> None:
        if time.monotonic() - self.last < self.interval_s:
            return
        self.last = time.monotonic()
        try:
            self.step()
        except Exception:  # Redis or the database away for a moment: next round
            log.warning("%s failed", self.name, exc_info=True)


def housekeeping() -> list[Every]:
    """The pool's periodic steps (each takes its own lock, so several hosts can run them)."""
    from rq.scheduler import RQScheduler

    from app import metrics
    from app.queue import all_queues, get_redis, settle_paused_queues
    from worker.reconcile import reconcile_once
    from worker.scheduler import fire_due_schedules

    settings = get_settings()
    rq_scheduler = RQScheduler(all_queues(get_redis()), connection=get_redis())

    def delayed_jobs() -> None:  # RQ's scheduler: retries waiting for their backoff
        if rq_scheduler.acquire_locks():
            rq_scheduler.enqueue_scheduled_jobs()

    return [
        Every("rq scheduler", 1.0, delayed_jobs),
        Every(
            "registry maintenance",
            settings.maintenance_interval_s,
            lambda: clean_queues(get_redis()),
        ),
        Every("reconciler", settings.reconcile_interval_s, reconcile_once),
        Every("schedules", settings.schedule_tick_s, fire_due_schedules),
        Every("metrics", 1.0, metrics.tick),
        Every("paused queues", 1.0, settle_paused_queues),
    ]


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
    steps = housekeeping()
    processes.extend(spawn() for _ in range(count))
    log.info("worker pool of %d started (pid %d)", count, os.getpid())
    while True:
        alive = [p for p in processes if p.is_alive()]
        if stopping or args.burst:
            if not alive:
                break
        else:
            for index, process in enumerate(processes):
                if not process.is_alive():
                    log.warning(
                        "worker %s exited (%s): starting another", process.pid, process.exitcode
                    )
                    processes[index] = spawn()
            for step in steps:
                step()
        time.sleep(0.25)
    log.info("worker pool stopped")


if __name__ == "__main__":
    main()
