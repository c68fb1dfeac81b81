"""Add or remove labels on the subscribers a filter selects, for scripts and cron."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.http import QueryDict

from labels.models import Label
from subscribers.actions import ExclusiveClash, queue_label_operation, run_label_operation, start_label_operation
from subscribers.filters import SubscriberFilter
from subscribers.models import LabelOperation, LabelSource, Subscriber


class Command(BaseCommand):
    help = (
        "Add or remove labels on every subscriber matching a filter, as a bulk change (recorded, undoable, "
        "announced to webhooks). FILTER is the Subscribers page's query string, e.g. 'label=vip&channel=web'."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=["add", "remove"])
        parser.add_argument("labels", nargs="+", metavar="LABEL_NAME", help="Label names (not titles).")
        parser.add_argument(
            "--filter", default="", metavar="QUERYSTRING", help="The Subscribers page's filter; all when omitted."
        )
        parser.add_argument(
            "--background", action="store_true", help="Print the operation's id and let `db_worker` run it."
        )

    def handle(self, *args, kind, labels, filter, background, **options):
        found = {label.name: label for label in Label.objects.filter(name__in=labels)}
        unknown = [name for name in labels if name not in found]
        if unknown:
            raise CommandError(f"No label is named {', '.join(unknown)}. Nothing was changed.")
        params = QueryDict(filter.lstrip("?"), mutable=True)
        for display_only in ("sort", "page", "per_page"):  # the page's query string may carry them: no filter
            params.pop(display_only, None)
        extra = sorted(set(params) - set(SubscriberFilter.base_filters))
        if extra:
            raise CommandError(
                f"--filter: {', '.join(extra)} is not a filter of the Subscribers page "
                f"(known: {', '.join(SubscriberFilter.base_filters)}). Nothing was changed."
            )
        problems = SubscriberFilter(params, queryset=Subscriber.objects.all()).problems()
        if problems:
            raise CommandError(f"--filter: {' '.join(problems)} Nothing was changed.")
        selection = {"filters": {name: params.getlist(name) for name in params}}
        try:
            with transaction.atomic():
                operation = start_label_operation(
                    kind, [found[name] for name in labels], source=LabelSource.COMMAND, selection=selection
                )
                if background:
                    queue_label_operation(operation)
        except ExclusiveClash as clash:
            raise CommandError(
                f"{clash} belong to one exclusive group: give one at most. Nothing was changed."
            ) from None
        if background:
            self.stdout.write(str(operation.pk))
            return
        self.stdout.write(f"{operation}: {operation.total_count:,} subscribers selected.")
        operation = run_label_operation(operation.pk, after_chunk=self._progress)
        if operation.status == LabelOperation.Status.FAILED:
            raise CommandError(f"{operation} failed: {operation.error}")
        self.stdout.write(self.style.SUCCESS(operation.summary()))

    def _progress(self, operation_id):
        operation = LabelOperation.objects.get(pk=operation_id)
        self.stdout.write(f"  {operation.selected_count:,} of {operation.total_count:,}")
