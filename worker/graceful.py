"""Graceful shutdown of one worker process, and the name it goes by.

SIGTERM (a rolling restart, `docker stop`, Ctrl-C on the pool) starts RQ's warm shutdown: the
worker takes no new job and lets the running one finish. If it has not finished within
`TASKDECK_SHUTDOWN_GRACE_S`, or a second SIGTERM comes, the worker kills the job's work horse (and
with it the claude process) and hands the task back to the front of its queue: the attempt is
closed as interrupted, the task goes back to `queued` and another worker runs it. The job keeps
its retries and its rate-limit slot, so a restart never costs a task one of its attempts.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from datetime import timedelta

from rq.job import Job
from rq.queue import Queue
from rq.utils import now

from app.settings import get_settings

log = logging.getLogger("taskdeck.worker")
HANDED_BACK = "handed back to the queue: its worker shut down"


def worker_name(pid: int | None = None) -> str:
    """`host.pid`: the host is TASKDECK_WORKER_HOST when set (a container's hostname is random),
    else the machine's hostname."""
    host = get_settings().worker_host or socket.gethostname()
    return f"{host}.{pid or os.getpid()}"


class GracefulShutdown:
    """Mixin for an RQ fork `Worker` (put it first in the bases): on shutdown, wait for the
    running task up to a grace period, then hand the task back to the queue instead of leaving
    it for the abandoned-job sweep."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.shutdown_grace_s = float(get_settings().shutdown_grace_s)
        # Import the job module now, not during a shutdown (it loads the SDK: seconds). Each
        # forked work horse inherits it too.
        import worker.jobs  # noqa: F401

        self._running: tuple[Job, Queue] | None = None
        self._grace_timer: threading.Timer | None = None

    def execute_job(self, job: Job, queue: Queue) -> None:
        self._running = (job, queue)
        try:
            super().execute_job(job, queue)
        finally:
            self._running = None
            if self._grace_timer is not None:
                self._grace_timer.cancel()

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        if self.horse_pid:
            log.info(
                "worker %s: letting its task finish (up to %.0f s)",
                self.name,
                self.shutdown_grace_s,
            )
            # The second SIGTERM is RQ's cold shutdown: request_force_stop below.
            # At least 1 s: RQ (and request_force_stop) ignore a second signal within 1 s.
            self._grace_timer = threading.Timer(
                max(1.1, self.shutdown_grace_s), os.kill, args=(os.getpid(), signal.SIGTERM)
            )
            self._grace_timer.daemon = True
            self._grace_timer.start()

    def request_force_stop(self, signum, frame) -> None:  # noqa: ANN001
        """Cold shutdown: stop the running task and hand it back, then exit."""
        requested = self._shutdown_requested_date
        if requested and (now() - requested) < timedelta(seconds=1):
            return  # the same stop sent twice (pool and terminal), as RQ itself ignores it
        # This handler runs inside RQ's horse monitor, under its SIGALRM death penalty: disarm it
        # so the hand-back is not cut short.
        signal.alarm(0)
        if self._grace_timer is not None:
            self._grace_timer.cancel()
        running = self._running
        if not (self.horse_pid and running):
            raise SystemExit()
        job, queue = running
        log.warning("worker %s: grace period over, handing job %s back", self.name, job.id)
        self.kill_horse()
        self.wait_for_horse()
        self._horse_pid = 0
        try:
            hand_back(self, job, queue)
        except Exception:  # the abandoned-job sweep and the reconciler still recover the task
            log.exception("worker %s: could not hand job %s back", self.name, job.id)
        raise SystemExit()


def hand_back(worker: GracefulShutdown, job: Job, queue: Queue) -> None:
    """Put a job whose horse is dead back at the front of its queue, its task back to queued."""
    from app import service
    from app.models import TaskStatus
    from app.queue import TaskLock, task_id_of_job
    from worker.jobs import kill_leftover_group

    task_id = task_id_of_job(job.id)  # None for a job that is not a task run
    if task_id is not None:
        kill_leftover_group(task_id)  # tool processes of claude's that outlived it
        service.close_open_attempts(task_id, TaskStatus.FAILED, f"interrupted: {HANDED_BACK}")
        if service.transition(
            task_id, [TaskStatus.RUNNING], TaskStatus.QUEUED, status_reason=HANDED_BACK
        ):
            service.publish_status(task_id, TaskStatus.QUEUED, HANDED_BACK)
        worker.connection.delete(TaskLock.key_for(task_id))  # its holder (the horse) is dead
    execution = worker.execution
    with worker.connection.pipeline() as pipeline:
        worker.cleanup_execution(job, pipeline=pipeline, execution=execution)
        # What RQ's own Job.retry does, without spending a retry: the job keeps its rate-limit
        # slot (it stays counted as queued) and goes to the front of its queue.
        queue._enqueue_job(job, pipeline=pipeline, at_front=True)
        pipeline.execute()
