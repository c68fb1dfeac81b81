from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from subscribers.actions import add_labels, change_labels, remove_labels
from subscribers.models import LabelChange, LabelOperation, LabelSource, Subscriber, SubscriberLabel

pytestmark = pytest.mark.django_db

LONG_AGO = timezone.now() - timedelta(days=30)


@pytest.fixture
def people(make_subscriber):
    return [make_subscriber(updated_at=LONG_AGO) for _ in range(4)]


def _labels_of(subscriber):
    return set(subscriber.labels.values_list("name", flat=True))


def test_add_labels_skips_existing_assignments(people, make_label, operator):
    vip, active = make_label("VIP"), make_label("Active")
    SubscriberLabel.objects.create(subscriber=people[0], label=vip)

    created = add_labels(Subscriber.objects.filter(pk__in=[p.pk for p in people[:3]]), [vip, active], by=operator)

    assert created == 5
    assert [_labels_of(p) for p in people] == [{"vip", "active"}] * 3 + [set()]
    assert SubscriberLabel.objects.filter(assigned_by=operator).count() == 5


def test_add_labels_moves_updated_at_only_when_labels_change(people, make_label):
    vip = make_label("VIP")
    SubscriberLabel.objects.create(subscriber=people[0], label=vip)

    add_labels(Subscriber.objects.filter(pk__in=[people[0].pk, people[1].pk]), [vip])

    people[0].refresh_from_db()
    people[1].refresh_from_db()
    assert people[0].updated_at == LONG_AGO
    assert people[1].updated_at > LONG_AGO


def test_remove_labels_only_touches_subscribers_that_had_them(people, make_label):
    vip, active = make_label("VIP"), make_label("Active")
    SubscriberLabel.objects.create(subscriber=people[0], label=vip)
    SubscriberLabel.objects.create(subscriber=people[0], label=active)

    removed = remove_labels(Subscriber.objects.all(), [vip])

    assert removed == 1
    assert _labels_of(people[0]) == {"active"}
    people[0].refresh_from_db()
    people[1].refresh_from_db()
    assert people[0].updated_at > LONG_AGO
    assert people[1].updated_at == LONG_AGO


def test_change_labels_keeps_labels_it_was_not_asked_about(people, make_label):
    vip, active, support = make_label("VIP"), make_label("Active"), make_label("Support")
    SubscriberLabel.objects.create(subscriber=people[0], label=vip)
    SubscriberLabel.objects.create(subscriber=people[0], label=support)  # added by someone else meanwhile

    assert change_labels(people[0], add=[active], remove=[vip]) == (1, 1)
    assert _labels_of(people[0]) == {"active", "support"}


def test_nothing_to_do_runs_no_query(people, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert add_labels(Subscriber.objects.all(), []) == 0
        assert remove_labels(Subscriber.objects.all(), []) == 0


def test_a_bulk_change_is_a_fixed_number_of_statements(make_subscriber, make_label, django_assert_num_queries):
    for _ in range(30):
        make_subscriber()
    labels = [make_label(f"Label {n}") for n in range(3)]
    # SAVEPOINT, (PostgreSQL: the bulk advisory lock), UPDATE subscribers, INSERT history .. SELECT,
    # INSERT assignments .. SELECT, RELEASE
    lock = 1 if connection.vendor == "postgresql" else 0
    with django_assert_num_queries(5 + lock):
        assert add_labels(Subscriber.objects.filter(first_name__startswith="First"), labels) == 90
    # SAVEPOINT, (the lock), UPDATE subscribers, INSERT history .. SELECT, DELETE assignments, RELEASE
    with django_assert_num_queries(5 + lock):
        assert remove_labels(Subscriber.objects.all(), labels[:2]) == 60


def _history(subscriber):
    return list(
        LabelChange.objects.filter(subscriber=subscriber)
        .order_by("pk")
        .values_list("label_name", "action", "source", "changed_by__username")
    )


def test_each_real_change_is_recorded_once(people, make_label, operator):
    vip, active = make_label("VIP"), make_label("Active")
    add_labels(Subscriber.objects.filter(pk=people[0].pk), [vip], by=operator, source=LabelSource.ADMIN)
    add_labels(Subscriber.objects.filter(pk__in=[people[0].pk, people[1].pk]), [vip, active], source=LabelSource.API)
    remove_labels(Subscriber.objects.all(), [vip], by=operator, source=LabelSource.BULK)

    assert _history(people[0]) == [
        ("vip", "added", "admin", "olivia"),
        ("active", "added", "api", None),
        ("vip", "removed", "bulk", "olivia"),
    ]
    assert _history(people[1]) == [
        ("vip", "added", "api", None),
        ("active", "added", "api", None),
        ("vip", "removed", "bulk", "olivia"),
    ]
    assert _history(people[2]) == []


def test_the_modal_records_its_changes_as_the_app(people, make_label, operator):
    vip, active = make_label("VIP"), make_label("Active")
    SubscriberLabel.objects.create(subscriber=people[0], label=vip)
    change_labels(people[0], add=[active], remove=[vip], by=operator)
    assert _history(people[0]) == [("active", "added", "app", "olivia"), ("vip", "removed", "app", "olivia")]


def test_history_rows_belong_to_their_bulk_operation(people, make_label, operator):
    vip = make_label("VIP")
    operation = LabelOperation.objects.create(kind="add", source=LabelSource.BULK, created_by=operator)
    add_labels(Subscriber.objects.all(), [vip], by=operator, source=LabelSource.BULK, operation=operation)
    assert operation.changes.count() == 4


def test_history_outlives_a_deleted_label(people, make_label):
    vip = make_label("VIP")
    add_labels(Subscriber.objects.filter(pk=people[0].pk), [vip])
    vip.delete()
    assert list(LabelChange.objects.order_by("pk").values_list("label", "label_name", "action", "source")) == [
        (None, "vip", "added", "app"),
        (None, "vip", "removed", "label_deleted"),
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="Only PostgreSQL keeps planner statistics to refresh.")
def test_a_large_change_refreshes_the_planner_statistics(people, make_label, monkeypatch):
    from django.test.utils import CaptureQueriesContext

    from subscribers import actions

    monkeypatch.setattr(actions, "ANALYZE_AFTER", 3)
    vip = make_label("VIP")
    with CaptureQueriesContext(connection) as small:
        add_labels(Subscriber.objects.filter(pk=people[0].pk), [vip])
    with CaptureQueriesContext(connection) as large:
        add_labels(Subscriber.objects.all(), [vip])
    assert not any(query["sql"].startswith("ANALYZE") for query in small.captured_queries)
    assert any(query["sql"].startswith("ANALYZE") for query in large.captured_queries)
