"""Time bulk label changes on a seeded PostgreSQL database, with and without the history.

    DEBUG=1 DATABASE_URL=postgres://… .venv/bin/python -m bench.bulk_labels [--runs 3] [--sizes 100000 500000]

Adds one fresh label to the first N subscribers (by id), then removes it again, through
`subscribers.actions.add_labels` / `remove_labels`, each in its own transaction. Every SQL
statement is timed (CaptureQueriesContext); "without history" is the total minus the
statement that inserts the history rows. Prints the median of the runs, in seconds.
"""

import argparse
import os
import statistics
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hexasubs.settings")
django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from labels.models import Label  # noqa: E402
from subscribers.actions import add_labels, remove_labels  # noqa: E402
from subscribers.models import LabelChange, LabelSource, Subscriber  # noqa: E402

HISTORY_TABLE = LabelChange._meta.db_table
SUBSCRIBER_TABLE = Subscriber._meta.db_table


def timed(change, subscribers, label):
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        changed = change(subscribers, [label], source=LabelSource.BULK)
    wall = time.perf_counter() - started  # includes the COMMIT, which is not a captured statement
    statements = sum(float(q["time"]) for q in queries)
    history = sum(float(q["time"]) for q in queries if q["sql"].lstrip().startswith(f'INSERT INTO "{HISTORY_TABLE}"'))
    stamp = sum(float(q["time"]) for q in queries if q["sql"].startswith(f'UPDATE "{SUBSCRIBER_TABLE}"'))
    return {
        "changed": changed,
        "wall": wall,
        "with": statements,
        "without": statements - history,
        "history": history,
        "stamp": stamp,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 500_000])
    args = parser.parse_args()
    label, _ = Label.objects.get_or_create(name="bench_bulk", defaults={"title": "Bench bulk"})
    ids = Subscriber.objects.order_by("pk").values_list("pk", flat=True)
    print(f"{Subscriber.objects.count():,} subscribers on {connection.vendor}")
    for size in args.sizes:
        last = ids[size - 1]
        subscribers = Subscriber.objects.filter(pk__lte=last)
        results = {"add": [], "remove": []}
        for _run in range(args.runs):
            results["add"].append(timed(add_labels, subscribers, label))
            results["remove"].append(timed(remove_labels, subscribers, label))
        for kind, runs in results.items():
            assert all(run["changed"] == size for run in runs), [run["changed"] for run in runs]
            median = {
                key: statistics.median(run[key] for run in runs)
                for key in ("wall", "with", "without", "history", "stamp")
            }
            print(
                f"{kind:6} {size:>7,}: with history {median['with']:.2f} s (wall {median['wall']:.2f} s), "
                f"without history {median['without']:.2f} s, history INSERT {median['history']:.2f} s, "
                f"updated_at UPDATE {median['stamp']:.2f} s "
                f"[runs with history: {', '.join(f'{run["with"]:.2f}' for run in runs)}]"
            )


if __name__ == "__main__":
    main()
