"""Background work yields the cores to the web processes."""

import os

from django.conf import settings


def lower_own_priority() -> None:
    """Lower this process's CPU priority by settings.WORKER_NICENESS (0 leaves it): for workers and batch commands.

    The database server's own processes keep theirs, so only this process's share of the work waits for the
    web processes: pages and the bot API stay fast while a broadcast sends or an import runs beside them.
    """
    if settings.WORKER_NICENESS:
        os.nice(settings.WORKER_NICENESS)
