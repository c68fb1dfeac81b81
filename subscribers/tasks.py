"""Background work of the subscribers app, run by `manage.py db_worker`."""

from django.tasks import task

from subscribers.actions import run_label_operation
from subscribers.models import LabelOperation
from subscribers.queries import subscribers_matching


@task()
def run_bulk_label_operation(operation_id: int) -> None:
    """Carry out a large bulk label operation recorded by `request_label_operation`."""
    operation = LabelOperation.objects.select_related("created_by").get(pk=operation_id)
    if operation.status != LabelOperation.Status.PENDING:
        return  # Already run: a task may be delivered twice.
    run_label_operation(operation, subscribers_matching(operation.filters))
