"""An experiment, not the engine: what a chunk costs when it is one statement (issue 10's profile).

    .venv/bin/python bench/bulk_prototype.py [--runs 2] [--members rows|array]

Runs the same chunks as subscribers.actions (CHUNK_SIZE windows of ids, one transaction each, the
operation row locked and updated, members recorded) but each chunk's select, change and member
record is a single `WITH .. INSERT/DELETE .. RETURNING` statement with parallel workers off, beside
the floor (bench/bulk_chunked.py's bare statement) in the same run. `--members array` records one
row per chunk (the changed ids as a bigint[]) in a side table of its own instead of one row per pair.
Nothing here is used by the application; it measures a proposal for subscribers/actions.py.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ARRAY_TABLE = "bench_operation_chunk"


def _chunked(kind, target, selection, by, *, members, chunk_size):
    from django.db import connection, transaction

    from subscribers.actions import start_label_operation
    from subscribers.models import LabelOperation, LabelOperationMember, LabelSource, SubscriberLabel
    from subscribers.queries import subscribers_matching

    sl = SubscriberLabel._meta.db_table
    mt = LabelOperationMember._meta.db_table
    started = time.perf_counter()
    operation = start_label_operation(kind, [target], by=by, source=LabelSource.BULK, selection=selection)
    low, last = operation.last_subscriber_id, operation.max_subscriber_id
    chunks, changed_total = [], 0
    while low < last:
        high = min(low + chunk_size, last)
        t = time.perf_counter()
        window = subscribers_matching(selection).filter(pk__gt=low, pk__lte=high).values("pk")
        chosen, params = window.query.sql_with_params()
        if kind == "add":
            change = (
                f"INSERT INTO {sl} (subscriber_id, label_id, assigned_at, assigned_by_id) "
                "SELECT id, %s, now(), %s FROM chosen ON CONFLICT (label_id, subscriber_id) DO NOTHING "
                "RETURNING subscriber_id, label_id"
            )
            change_params = [target.pk, by.pk]
        else:
            change = (
                f"DELETE FROM {sl} WHERE label_id = %s AND subscriber_id IN (SELECT id FROM chosen) "
                "RETURNING subscriber_id, label_id"
            )
            change_params = [target.pk]
        if members == "rows":
            record = (
                f"INSERT INTO {mt} (operation_id, subscriber_id, label_id) "
                "SELECT %s, subscriber_id, label_id FROM changed"
            )
            record_params = [operation.pk]
        else:
            record = (
                f"INSERT INTO {ARRAY_TABLE} (operation_id, label_id, low, high, subscriber_ids) "
                "SELECT %s, %s, %s, %s, array_agg(subscriber_id ORDER BY subscriber_id) FROM changed "
                "HAVING count(*) > 0"
            )
            record_params = [operation.pk, target.pk, low, high]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            cursor.execute(f"SELECT id FROM {LabelOperation._meta.db_table} WHERE id = %s FOR UPDATE", [operation.pk])
            cursor.execute(
                f"WITH chosen(id) AS MATERIALIZED ({chosen}), changed AS ({change}), recorded AS ({record}) "
                "SELECT (SELECT count(*) FROM chosen), (SELECT count(*) FROM changed)",
                [*params, *change_params, *record_params],
            )
            seen, changed = cursor.fetchone()
            changed_total += changed
            cursor.execute(
                f"UPDATE {LabelOperation._meta.db_table} SET last_subscriber_id = %s, selected_count = selected_count "
                "+ %s, changed_count = changed_count + %s, heartbeat_at = now() WHERE id = %s",
                [high, seen, changed, operation.pk],
            )
        chunks.append(time.perf_counter() - t)
        low = high
    LabelOperation.objects.filter(pk=operation.pk).update(status=LabelOperation.Status.DONE)
    return {"wall": time.perf_counter() - started, "chunks": chunks, "changed": changed_total, "op": operation.pk}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--members", choices=["rows", "array"], default="rows")
    parser.add_argument("--chunk-size", type=int, default=5_000)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from bench import harness

    harness.environment()
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection

    from bench.bulk_chunked import TARGET_LABEL, forget_operations, run_floor, vacuum
    from bench.load import BIG_LABEL
    from labels.models import Label

    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {ARRAY_TABLE} (operation_id bigint, label_id bigint, low bigint, "
            "high bigint, subscriber_ids bigint[], PRIMARY KEY (operation_id, label_id, low))"
        )
    by = User.objects.get(username="bench-operator")
    target = Label.objects.get(name=TARGET_LABEL)
    selection = {"filters": {"label": [BIG_LABEL]}}
    results = {}
    print(f"load {os.getloadavg()}", flush=True)
    for number in range(args.runs):
        order = ["proto", "floor"] if number % 2 == 0 else ["floor", "proto"]
        ops = []
        for who in order:
            for kind in ("add", "remove"):
                vacuum()
                if who == "proto":
                    result = _chunked(kind, target, selection, by, members=args.members, chunk_size=args.chunk_size)
                    ops.append(result["op"])
                    extra = f" max chunk {max(result['chunks']) * 1000:.0f} ms"
                else:
                    result, extra = run_floor(kind, target, selection, by), ""
                results.setdefault((who, kind), []).append(result["wall"])
                print(
                    f"run {number + 1} {who} {kind} {result['wall']:.2f} s changed {result['changed']:,}{extra}",
                    flush=True,
                )
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {ARRAY_TABLE} WHERE operation_id = ANY(%s)", [ops])
        forget_operations(ops)
    for kind in ("add", "remove"):
        proto, floor = statistics.median(results[("proto", kind)]), statistics.median(results[("floor", kind)])
        print(f"{kind}: prototype ({args.members}) {proto:.2f} s, floor {floor:.2f} s, ratio {proto / floor:.2f}x")
    print(f"load {os.getloadavg()}")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {ARRAY_TABLE}")


if __name__ == "__main__":
    main()
