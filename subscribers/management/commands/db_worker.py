"""django-tasks-db's worker, plus a sweep that resumes the work of workers that died.

django-tasks-db leaves the task of a worker killed mid-task RUNNING forever and
never runs it again. Our long work is resumable (chunked bulk label operations,
subscriber imports, webhook deliveries), so every worker also sweeps, every SWEEP_SECONDS, for work
whose worker stopped showing signs of life, and queues it again. Any number of
workers may sweep at once: each piece of work is taken by one of them.

It also lowers its own CPU priority (settings.WORKER_NICENESS, default 10).
"""

import logging
import threading

from django.db import close_old_connections
from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand

from broadcasts.actions import sweep_broadcasts
from hexasubs.priority import lower_own_priority
from subscribers.actions import remove_old_import_files, resume_stalled_imports, resume_stalled_operations
from webhooks.tasks import requeue_stale_deliveries

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 10
SWEEPS = [
    resume_stalled_operations,
    resume_stalled_imports,
    requeue_stale_deliveries,
    sweep_broadcasts,
    remove_old_import_files,
]


def sweep_forever(stop: threading.Event) -> None:
    while not stop.wait(SWEEP_SECONDS):
        for sweep in SWEEPS:
            close_old_connections()
            try:
                sweep()
            except Exception:
                logger.exception("Sweep %s failed; trying again in %s s", sweep.__name__, SWEEP_SECONDS)
        close_old_connections()


class Command(DatabaseWorkerCommand):
    help = DatabaseWorkerCommand.help + " Also resumes bulk label operations and webhook deliveries of dead workers."

    def handle(self, *args, **options):
        lower_own_priority()
        stop = threading.Event()
        threading.Thread(target=sweep_forever, args=(stop,), name="sweep", daemon=True).start()
        try:
            return super().handle(*args, **options)
        finally:
            stop.set()
