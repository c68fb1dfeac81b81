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


def test_no_label_change_moves_the_profile_date(people, make_label, operator):
    vip = make_label("VIP")
    add_labels(people[:2], [vip])
    change_labels(people[2], add=[vip], by=operator)
    remove_labels(people, [vip])
    assert set(Subscriber.objects.values_list("updated_at", flat=True)) == {LONG_AGO}


def test_remove_labels_only_touches_subscribers_that_had_them(people, make_label):
    vip, active = make_label("VIP"), make_label("Active")
    SubscriberLabel.objects.create(subscriber=people[0], label=vip)
    SubscriberLabel.objects.create(subscriber=people[0], label=active)

    removed = remove_labels(Subscriber.objects.all(), [vip])

    assert removed == 1
    assert _labels_of(people[0]) == {"active"}
    assert LabelOperation.objects.get().changed_subscribers == 1


def test_change_labels_keeps_labels_it_was_not_asked_about(people, make_label):
    vip, active, support = make_label("VIP"), make_label("Active"), make_label("Support")
    SubscriberLabel.objects.create(subscriber=people[0], label=vip)
    SubscriberLabel.objects.create(subscriber=people[0], label=support)  # added by someone else meanwhile

    assert change_labels(people[0], add=[active], remove=[vip]) == (1, 1)
    assert _labels_of(people[0]) == {"active", "support"}


def test_a_label_both_added_and_removed_changes_nothing(people, make_label):
    vip = make_label("VIP")
    with pytest.raises(ValueError, match="both added and removed"):
        change_labels(people[0], add=[vip], remove=[vip.pk])
    assert _labels_of(people[0]) == set() and not LabelChange.objects.exists()


def test_nothing_to_do_runs_no_query(people, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert add_labels(Subscriber.objects.none(), []) == 0
        assert remove_labels([], []) == 0


def test_a_chunk_is_a_fixed_number_of_statements(make_subscriber, make_label, django_assert_num_queries):
    from subscribers.actions import _run_chunk, start_label_operation

    people = [make_subscriber() for _ in range(30)]
    labels = [make_label(f"Label {n}") for n in range(3)]
    operation = start_label_operation("add", labels, source=LabelSource.BULK, selection={"filters": {}})
    # SAVEPOINT, SELECT the operation FOR UPDATE, SELECT the operation's labels, then on SQLite: SELECT the
    # chunk's ids, INSERT assignments RETURNING, INSERT members; on PostgreSQL: the chunk lock, then one
    # statement for those three; the endpoints listening to webhooks (none), UPDATE the operation, RELEASE
    with django_assert_num_queries(8 if connection.vendor == "postgresql" else 9):
        _run_chunk(operation.pk)
    operation.refresh_from_db()
    assert (operation.status, operation.changed_count, operation.selected_count) == ("done", 90, len(people))


def _history(subscriber):
    return list(
        LabelChange.objects.filter(subscriber=subscriber)
        .order_by("pk")
        .values_list("label_name", "action", "source", "changed_by__username")
    )


def test_each_real_single_change_is_recorded_once(people, make_label, operator):
    vip, active = make_label("VIP"), make_label("Active")
    change_labels(people[0], add=[vip], by=operator, source=LabelSource.ADMIN)
    change_labels(people[0], add=[vip, active], source=LabelSource.API)
    change_labels(people[0], remove=[vip, vip], by=operator)

    assert _history(people[0]) == [
        ("vip", "added", "admin", "olivia"),
        ("active", "added", "api", None),
        ("vip", "removed", "app", "olivia"),
    ]
    assert _history(people[1]) == []


def test_the_modal_records_its_changes_as_the_app(people, make_label, operator):
    vip, active = make_label("VIP"), make_label("Active")
    SubscriberLabel.objects.create(subscriber=people[0], label=vip)
    change_labels(people[0], add=[active], remove=[vip], by=operator)
    assert _history(people[0]) == [("active", "added", "app", "olivia"), ("vip", "removed", "app", "olivia")]


def test_a_bulk_change_records_exactly_whom_it_changed_and_no_row_per_person(people, make_label, operator):
    vip = make_label("VIP")
    SubscriberLabel.objects.create(subscriber=people[0], label=vip)
    add_labels(people, [vip], by=operator)
    operation = LabelOperation.objects.get()
    assert sorted(operation.members.values_list("subscriber_id", flat=True)) == [p.pk for p in people[1:]]
    assert not LabelChange.objects.exists()


def test_history_outlives_a_deleted_label(people, make_label):
    from labels.actions import delete_label

    vip = make_label("VIP")
    change_labels(people[0], add=[vip])
    delete_label(vip)
    assert list(LabelChange.objects.values_list("label", "label_name", "action")) == [(None, "vip", "added")]
    operation = LabelOperation.objects.get()
    assert (operation.source, operation.label_names, operation.changed_subscribers) == ("label_deleted", ["vip"], 1)
    assert list(operation.members.values_list("subscriber_id", "label_id")) == [(people[0].pk, vip.pk)]
