"""Export subscribers as CSV, for scripts: exactly what a filter of the Subscribers page selects."""

import sys

from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict

from subscribers import exports
from subscribers.filters import SubscriberFilter
from subscribers.models import Subscriber
from subscribers.queries import subscribers_matching


class Command(BaseCommand):
    help = (
        "Write the subscribers a filter selects as CSV, with their labels (the format import_subscribers reads). "
        "FILTER is the Subscribers page's query string, e.g. 'label=vip&channel=web'."
    )

    def add_arguments(self, parser):
        parser.add_argument("--filter", default="", metavar="QUERYSTRING", help="All subscribers when omitted.")
        parser.add_argument("--output", metavar="FILE", help="Where to write (standard output when omitted).")
        parser.add_argument(
            "--excel", action="store_true", help="Semicolons and a byte order mark, for Excel in French."
        )

    def handle(self, *args, filter, output, excel, **options):
        params = QueryDict(filter.lstrip("?"))
        extra = sorted(set(params) - set(SubscriberFilter.base_filters) - {"page", "per_page", "sort"})
        if extra:
            raise CommandError(
                f"--filter: {', '.join(extra)} is not a filter of the Subscribers page "
                f"(known: {', '.join(SubscriberFilter.base_filters)})."
            )
        problems = SubscriberFilter(params, queryset=Subscriber.objects.all()).problems()
        if problems:
            raise CommandError(f"--filter: {' '.join(problems)}")
        selection = {
            "filters": {name: params.getlist(name) for name in params if name in SubscriberFilter.base_filters}
        }
        chunks = exports.csv_chunks(subscribers_matching(selection), delimiter=";" if excel else ",", bom=excel)
        if output:
            with open(output, "w", encoding="utf-8", newline="") as file:
                rows = self._write(chunks, file)
            self.stderr.write(f"{rows:,} subscribers written to {output}.")
        else:
            self._write(chunks, sys.stdout if self.stdout._out is sys.stdout else self.stdout._out)

    def _write(self, chunks, file) -> int:
        rows = -1
        for chunk in chunks:
            file.write(chunk)
            rows += chunk.count("\r\n")
        return rows
