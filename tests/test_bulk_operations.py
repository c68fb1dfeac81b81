"""The bulk label engine: operations run in chunks, resume after a crash, cancel, undo, and announce what changed.

Chunks are windows of CHUNK_SIZE subscriber ids; the tests make it 3 so that a
handful of subscribers spans several chunks. The fixtures number subscribers
consecutively, so "chunk 2" is people[3:6].
"""

import json
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.db.models import F
from django.tasks import task_backends
from django.utils import timezone, translation

from labels.actions import delete_label
from labels.models import Label
from subscribers import actions, events
from subscribers.actions import (
    STALE_AFTER,
    add_labels,
    cancel_label_operation,
    change_labels,
    continue_label_operation,
    remove_labels,
    resume_stalled_operations,
    run_label_operation,
    start_label_operation,
    undo_label_operation,
)
from subscribers.models import LabelChangeAction, LabelOperation, LabelOperationMember, LabelSource, SubscriberLabel
from subscribers.queries import label_history
from webhooks.models import Delivery, Endpoint, Event

pytestmark = pytest.mark.django_db

ADD, REMOVE = LabelOperation.Kind.ADD, LabelOperation.Kind.REMOVE
PENDING, RUNNING, DONE = LabelOperation.Status.PENDING, LabelOperation.Status.RUNNING, LabelOperation.Status.DONE
CANCELLED, FAILED = LabelOperation.Status.CANCELLED, LabelOperation.Status.FAILED


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(actions, "CHUNK_SIZE", 3)


@pytest.fixture(autouse=True)
def queue(settings):
    """A task backend that records what is enqueued without running it."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    return task_backends["default"]


@pytest.fixture
def people(make_subscriber):
    """Seven subscribers with consecutive ids: chunks of 3, 3 and 1."""
    return [make_subscriber() for _ in range(7)]


@pytest.fixture
def vip(make_label):
    return make_label("VIP", name="vip")


def _start(kind, labels, *, selection=None, by=None):
    return start_label_operation(kind, labels, by=by, source=LabelSource.BULK, selection=selection or {"filters": {}})


def _ticked(subscribers):
    """The selection of rows ticked on the table, without a filter."""
    return {"filters": {}, "ids": sorted(_ids(subscribers))}


def _carriers(label):
    return set(SubscriberLabel.objects.filter(label=label).values_list("subscriber_id", flat=True))


def _members(operation):
    return set(LabelOperationMember.objects.filter(operation=operation).values_list("subscriber_id", "label_id"))


def _pairs(subscribers, label):
    return {(subscriber.pk, label.pk) for subscriber in subscribers}


def _ids(subscribers):
    return {subscriber.pk for subscriber in subscribers}


def _counts(operation):
    operation.refresh_from_db()
    return operation.status, operation.selected_count, operation.changed_count, operation.changed_subscribers


def _give(subscribers, label):
    SubscriberLabel.objects.bulk_create(SubscriberLabel(subscriber=s, label=label) for s in subscribers)


class Crash(BaseException):
    """A worker dying at that instant: like SIGKILL, nothing in the operation's code can catch it."""


def _crash_on_call(monkeypatch, target, name, call, error=None):
    """Make target.name raise `error` (a Crash) on its `call`-th call (1-based) only, as a worker killed there once."""
    original, calls = getattr(target, name), []

    def crashing(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise error or Crash(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, crashing)


def _die(operation_id):
    """An `after_chunk` that stops the run after its first chunk committed, as a killed worker does."""
    raise Crash


@pytest.mark.parametrize(
    ("kind", "changed", "selected", "summary"),
    [
        ("add", 2000, 2000, "«\u00a0VIP\u00a0» ajoutée à 2\u00a0000 abonnés (0 l\u2019avait déjà)."),
        ("add", 1, 3, "«\u00a0VIP\u00a0» ajoutée à 1 abonné (2 l\u2019avaient déjà)."),
        ("remove", 1, 1, "«\u00a0VIP\u00a0» retirée à 1 abonné (0 ne l\u2019avait pas)."),
        ("remove", 0, 2, "«\u00a0VIP\u00a0» retirée à 0 abonné (2 ne l\u2019avaient pas)."),
    ],
)
def test_a_summary_in_french_gives_each_count_its_own_plural(vip, kind, changed, selected, summary):
    operation = LabelOperation(kind=kind, label_names=["vip"], changed_count=changed, selected_count=selected)
    operation.save()
    operation.labels.set([vip])
    with translation.override("fr"):
        assert operation.summary() == summary


# Chunks --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how_many", "progress", "summary"),
    [
        (0, [0], "Added “VIP” to 0 subscribers (0 already had it)."),
        (1, [1], "Added “VIP” to 1 subscriber (0 already had it)."),
        (2, [2], "Added “VIP” to 2 subscribers (0 already had it)."),
        (3, [3], "Added “VIP” to 3 subscribers (0 already had it)."),
        (4, [3, 4], "Added “VIP” to 4 subscribers (0 already had it)."),
    ],
    ids=["nobody", "one", "chunk-size-minus-one", "chunk-size", "chunk-size-plus-one"],
)
def test_every_selected_subscriber_is_labelled_once_whatever_their_number(
    make_subscriber, vip, how_many, progress, summary
):
    crowd = [make_subscriber() for _ in range(how_many)]
    seen = []
    operation = _start(ADD, [vip])

    operation = run_label_operation(
        operation.pk, after_chunk=lambda pk: seen.append(LabelOperation.objects.get(pk=pk).selected_count)
    )

    assert seen == progress
    assert (operation.status, operation.total_count) == (DONE, how_many)
    assert _counts(operation) == (DONE, how_many, how_many, how_many)
    assert _carriers(vip) == _ids(crowd)
    assert _members(operation) == _pairs(crowd, vip)
    assert operation.summary() == summary


def test_each_chunk_records_its_progress_as_it_commits(people, vip, make_label):
    newsletter = make_label("Newsletter", name="newsletter")
    _give(people[1:2], vip)
    states = []

    def after_chunk(pk):
        operation = LabelOperation.objects.get(pk=pk)
        states.append(
            (
                operation.status,
                operation.last_subscriber_id,
                operation.selected_count,
                operation.changed_count,
                operation.changed_subscribers,
                len(_members(operation)),
            )
        )

    operation = run_label_operation(_start(ADD, [vip, newsletter]).pk, after_chunk=after_chunk)

    assert states == [
        (RUNNING, people[2].pk, 3, 5, 3, 5),
        (RUNNING, people[5].pk, 6, 11, 6, 11),
        (DONE, people[6].pk, 7, 13, 7, 13),
    ]
    assert operation.summary() == "Added “Newsletter”, “VIP”: 13 new assignments on 7 selected subscribers."


def test_each_chunk_moves_the_heartbeat(people, vip):
    operation = _start(ADD, [vip])
    LabelOperation.objects.filter(pk=operation.pk).update(heartbeat_at=F("heartbeat_at") - timedelta(hours=1))
    beats = []

    run_label_operation(
        operation.pk, after_chunk=lambda pk: beats.append(LabelOperation.objects.get(pk=pk).heartbeat_at)
    )

    assert len(beats) == 3
    assert all(beat > timezone.now() - timedelta(minutes=1) for beat in beats)
    assert beats == sorted(beats)


@pytest.mark.parametrize("how_many", [1, 3])
def test_a_chunk_runs_a_fixed_number_of_queries_whatever_its_size(
    make_subscriber, make_label, vip, operator, django_assert_num_queries, how_many
):
    Endpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s", events=[Event.LABELS_CHANGED])
    crowd = [make_subscriber() for _ in range(how_many)]
    operation = _start(ADD, [vip, make_label("Newsletter")], selection={"filters": {"locale": ["en"]}}, by=operator)
    # SAVEPOINT; the operation, locked; the labels; SQLite: the window's subscribers, INSERT assignments,
    # INSERT members; PostgreSQL: the chunk lock, then one statement doing those three; the listening
    # endpoints; the payload's labels and subscribers; INSERT deliveries; UPDATE the operation; RELEASE
    # SAVEPOINT; then the operation returned, with its labels.
    with django_assert_num_queries(13 if ONE_STATEMENT else 14):
        operation = run_label_operation(operation.pk)

    assert _counts(operation) == (DONE, how_many, 2 * how_many, how_many)
    assert _carriers(vip) == _ids(crowd)


def test_the_filter_and_the_ticked_rows_select_the_subscribers(make_subscriber, vip):
    french = [make_subscriber(locale="fr-FR") for _ in range(4)]
    english = [make_subscriber(locale="en-US") for _ in range(2)]

    operation = run_label_operation(
        _start(ADD, [vip], selection={"filters": {"locale": ["fr"]}, "ids": sorted(_ids(french[1:] + english))}).pk
    )

    assert operation.total_count == 3
    assert _carriers(vip) == _ids(french[1:])


def test_an_invalid_filter_is_refused_before_anything_is_recorded(people, vip):
    with pytest.raises(ValueError, match="There is no label named “ghost”"):
        _start(ADD, [vip], selection={"filters": {"label": ["ghost"]}})

    assert not LabelOperation.objects.exists()


def test_a_finished_operation_run_again_changes_nothing(people, vip):
    operation = run_label_operation(_start(ADD, [vip]).pk)
    finished_at = operation.finished_at
    SubscriberLabel.objects.filter(subscriber=people[0]).delete()

    operation = run_label_operation(operation.pk)

    assert _counts(operation) == (DONE, 7, 7, 7)
    assert operation.finished_at == finished_at
    assert _carriers(vip) == _ids(people[1:])


# Crashes -------------------------------------------------------------------------------------------------

# Where a worker can die inside a chunk, in the order a chunk calls them, each once per chunk. PostgreSQL
# selects, changes and records a chunk in one statement; SQLite in three.
ONE_STATEMENT = connection.vendor == "postgresql"
CHANGE_STEP = "_change_chunk_in_one_statement" if ONE_STATEMENT else "_apply"
INSIDE_A_CHUNK = [
    *(
        [(actions, CHANGE_STEP)]
        if ONE_STATEMENT
        else [(actions, name) for name in ("_candidates", "_apply", "_record_members")]
    ),
    (events, "labels_changed"),
]
STAGES = [
    pytest.param(target, name, chunk, id=f"{name}-chunk{chunk}")
    for target, name in INSIDE_A_CHUNK
    for chunk in (1, 2, 3)
] + [pytest.param(actions, "_finish", 3, id="_finish-chunk3")]  # only the last chunk finishes


@pytest.mark.parametrize(("target", "name", "chunk"), STAGES)
def test_a_crash_rolls_its_chunk_back_whole_and_a_second_run_finishes_exactly(
    people, vip, monkeypatch, target, name, chunk
):
    Endpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s", events=[Event.LABELS_CHANGED])
    _crash_on_call(monkeypatch, target, name, 1 if name == "_finish" else chunk)
    operation = _start(ADD, [vip])

    with pytest.raises(Crash):
        run_label_operation(operation.pk)

    done = people[: (chunk - 1) * 3]
    assert _counts(operation) == (PENDING if chunk == 1 else RUNNING, len(done), len(done), len(done))
    assert operation.last_subscriber_id == (done[-1].pk if done else people[0].pk - 1)
    assert operation.finished_at is None
    assert _carriers(vip) == _ids(done)
    assert _members(operation) == _pairs(done, vip)
    assert Delivery.objects.count() == chunk - 1

    operation = run_label_operation(operation.pk)

    assert _counts(operation) == (DONE, 7, 7, 7)
    assert _carriers(vip) == _ids(people)
    assert _members(operation) == _pairs(people, vip)
    assert vip.tally.subscribers == 7
    listed = [row["id"] for body in Delivery.objects.values_list("body", flat=True) for row in _subscribers(body)]
    assert sorted(listed) == sorted(_ids(people))
    assert operation.summary() == "Added “VIP” to 7 subscribers (0 already had it)."


def test_a_worker_dying_between_chunks_loses_nothing(people, vip):
    operation = _start(ADD, [vip])

    def die_after_the_second_chunk(pk):
        if LabelOperation.objects.get(pk=pk).selected_count == 6:
            raise Crash

    with pytest.raises(Crash):
        run_label_operation(operation.pk, after_chunk=die_after_the_second_chunk)
    assert _counts(operation) == (RUNNING, 6, 6, 6)

    operation = run_label_operation(operation.pk)

    assert _counts(operation) == (DONE, 7, 7, 7)
    assert _members(operation) == _pairs(people, vip)


def test_a_deadlocked_chunk_is_tried_again(people, vip, monkeypatch):
    _crash_on_call(monkeypatch, actions, CHANGE_STEP, 2, error=OperationalError("deadlock detected"))

    operation = run_label_operation(_start(ADD, [vip]).pk)

    assert _counts(operation) == (DONE, 7, 7, 7)
    assert _members(operation) == _pairs(people, vip)


# The sweep -----------------------------------------------------------------------------------------------


def _stall(operation, ago=STALE_AFTER + timedelta(seconds=1)):
    LabelOperation.objects.filter(pk=operation.pk).update(heartbeat_at=timezone.now() - ago)


def _queued(queue):
    return [(result.task.module_path, result.args) for result in queue.results]


def test_the_sweep_requeues_an_operation_whose_worker_stopped_and_the_task_finishes_it(people, vip, queue):
    operation = _start(ADD, [vip])
    with pytest.raises(Crash):
        run_label_operation(operation.pk, after_chunk=_die)
    _stall(operation)

    assert resume_stalled_operations() == [operation.pk]

    assert _queued(queue) == [(continue_label_operation.module_path, [operation.pk])]
    continue_label_operation.call(operation.pk)
    assert _counts(operation) == (DONE, 7, 7, 7)


def test_the_sweep_requeues_a_pending_operation_nobody_picked_up(people, vip, queue):
    operation = _start(ADD, [vip])
    _stall(operation)

    assert resume_stalled_operations() == [operation.pk]


def test_the_sweep_leaves_an_operation_with_a_fresh_heartbeat_alone(people, vip, queue):
    operation = _start(ADD, [vip])
    _stall(operation, ago=STALE_AFTER - timedelta(seconds=5))

    assert resume_stalled_operations() == []
    assert queue.results == []


def test_two_sweeps_in_a_row_queue_a_stalled_operation_once(people, vip, queue):
    operation = _start(ADD, [vip])
    _stall(operation)

    assert resume_stalled_operations() == [operation.pk]
    assert resume_stalled_operations() == []
    assert resume_stalled_operations(now=timezone.now() + timedelta(seconds=30)) == []

    assert len(queue.results) == 1


def test_the_sweep_never_requeues_a_finished_operation(people, vip, queue):
    for finished in (run_label_operation(_start(ADD, [vip]).pk), _start(REMOVE, [vip])):
        cancel_label_operation(finished, by=None)
        _stall(finished, ago=timedelta(days=1))

    assert resume_stalled_operations() == []
    assert queue.results == []


# Cancel --------------------------------------------------------------------------------------------------


def test_a_pending_operation_cancelled_never_changes_anything(people, vip, operator):
    operation = _start(ADD, [vip])

    assert cancel_label_operation(operation, by=operator) is True

    operation = run_label_operation(operation.pk)
    assert _counts(operation) == (CANCELLED, 0, 0, 0)
    assert operation.cancelled_by == operator
    assert operation.finished_at is not None
    assert _carriers(vip) == set()
    assert operation.summary() == "Cancelled after 0 subscribers. Added “VIP” to 0 subscribers (0 already had it)."


def test_a_running_operation_stops_after_its_current_chunk_and_keeps_what_it_did(people, vip, operator):
    operation = _start(ADD, [vip])
    answers = []

    def cancel_after_each_chunk(pk):
        answers.append(cancel_label_operation(LabelOperation(pk=pk), by=operator))

    operation = run_label_operation(operation.pk, after_chunk=cancel_after_each_chunk)

    assert answers == [True, False]
    assert _counts(operation) == (CANCELLED, 3, 3, 3)
    assert _carriers(vip) == _ids(people[:3])
    assert _members(operation) == _pairs(people[:3], vip)
    assert operation.summary() == "Cancelled after 3 subscribers. Added “VIP” to 3 subscribers (0 already had it)."
    assert run_label_operation(operation.pk).selected_count == 3


def test_a_finished_operation_cannot_be_cancelled(people, vip, operator):
    operation = run_label_operation(_start(ADD, [vip]).pk)

    assert cancel_label_operation(operation, by=operator) is False

    operation.refresh_from_db()
    assert (operation.status, operation.cancel_requested_at, operation.cancelled_by) == (DONE, None, None)


def test_a_cancelled_operation_can_be_undone(people, vip, operator):
    operation = _start(ADD, [vip])
    run_label_operation(operation.pk, after_chunk=lambda pk: cancel_label_operation(LabelOperation(pk=pk), by=operator))

    undo = undo_label_operation(operation, by=operator)

    assert _counts(undo) == (DONE, 3, 3, 3)
    assert _carriers(vip) == set()


# Undo ----------------------------------------------------------------------------------------------------


def test_undoing_an_addition_takes_the_label_from_exactly_those_it_gave_it_to(people, vip, operator):
    _give(people[1:5:3], vip)
    operation = run_label_operation(_start(ADD, [vip], by=operator).pk)
    assert operation.changed_count == 5

    undo = undo_label_operation(operation, by=operator)

    assert (undo.kind, undo.source, undo.undoes, undo.created_by) == (REMOVE, LabelSource.UNDO, operation, operator)
    assert (undo.total_count, *_counts(undo)) == (5, DONE, 5, 5, 5)
    assert _carriers(vip) == _ids(people[1:5:3])
    assert _members(undo) == _members(operation) == _pairs(set(people) - set(people[1:5:3]), vip)
    assert undo.summary() == "Removed “VIP” from 5 subscribers (0 did not have it)."


def test_undoing_a_removal_gives_the_label_back_to_exactly_those_it_took_it_from(people, vip, operator):
    _give(people[:5], vip)
    operation = run_label_operation(_start(REMOVE, [vip], by=operator).pk)

    undo = undo_label_operation(operation, by=operator)

    assert (undo.kind, *_counts(undo)) == (ADD, DONE, 5, 5, 5)
    assert _carriers(vip) == _ids(people[:5])
    assert _members(undo) == _pairs(people[:5], vip)


def test_an_undo_keeps_what_others_changed_since(people, vip, operator):
    operation = run_label_operation(_start(ADD, [vip], selection=_ticked(people[:4])).pk)
    change_labels(people[6], add=[vip])
    remove_labels(people[:1], [vip])

    undo = undo_label_operation(operation, by=operator)

    assert (undo.total_count, *_counts(undo)) == (4, DONE, 4, 3, 3)
    assert _carriers(vip) == {people[6].pk}
    assert undo.summary() == "Removed “VIP” from 3 subscribers (1 did not have it)."


def test_undoing_a_removal_skips_subscribers_deleted_since(people, vip, operator):
    _give(people[:3], vip)
    operation = run_label_operation(_start(REMOVE, [vip]).pk)
    people[1].delete()

    undo = undo_label_operation(operation, by=operator)

    assert _counts(undo) == (DONE, 2, 2, 2)
    assert _carriers(vip) == {people[0].pk, people[2].pk}


def test_an_undo_can_itself_be_undone(people, vip, operator):
    operation = run_label_operation(_start(ADD, [vip]).pk)
    undo = undo_label_operation(operation, by=operator)

    redo = undo_label_operation(undo, by=operator)

    assert (redo.kind, redo.undoes, *_counts(redo)) == (ADD, undo, DONE, 7, 7, 7)
    assert _carriers(vip) == _ids(people)
    assert _members(redo) == _pairs(people, vip)


def test_an_operation_is_undone_once_only(people, vip, operator):
    operation = run_label_operation(_start(ADD, [vip]).pk)
    undo_label_operation(operation, by=operator)
    operation.refresh_from_db()

    with pytest.raises(ValueError, match="cannot be undone"):
        undo_label_operation(operation, by=operator)

    assert LabelOperation.objects.filter(undoes=operation).count() == 1
    assert _carriers(vip) == set()
    assert not operation.can_undo


@pytest.mark.parametrize("state", ["running", "without changes"])
def test_an_operation_that_is_running_or_changed_nothing_cannot_be_undone(people, vip, operator, state):
    if state == "running":
        operation = _start(ADD, [vip])
        with pytest.raises(Crash):
            run_label_operation(operation.pk, after_chunk=_die)
    else:
        _give(people, vip)
        operation = run_label_operation(_start(ADD, [vip]).pk)

    with pytest.raises(ValueError, match="cannot be undone"):
        undo_label_operation(operation, by=operator)

    assert not LabelOperation.objects.filter(undoes=operation).exists()


def test_a_large_undo_runs_in_the_background(
    people, vip, operator, settings, queue, django_capture_on_commit_callbacks
):
    operation = run_label_operation(_start(ADD, [vip]).pk)
    settings.BULK_BACKGROUND_THRESHOLD = 5

    with django_capture_on_commit_callbacks(execute=True):
        undo = undo_label_operation(operation, by=operator)

    assert undo.status == PENDING
    assert _queued(queue) == [(continue_label_operation.module_path, [undo.pk])]
    assert _carriers(vip) == _ids(people)


# Overlaps and concurrent writes --------------------------------------------------------------------------


def test_two_additions_of_the_same_label_overlapping_count_each_assignment_once(people, vip):
    first = _start(ADD, [vip])
    second = _start(ADD, [vip], selection=_ticked(people[3:]))

    def run_the_second_after_our_first_chunk(pk):
        if LabelOperation.objects.get(pk=pk).selected_count == 3:
            run_label_operation(second.pk)

    run_label_operation(first.pk, after_chunk=run_the_second_after_our_first_chunk)

    assert _counts(first) == (DONE, 7, 3, 3)
    assert _counts(second) == (DONE, 4, 4, 4)
    assert _members(first) == _pairs(people[:3], vip)
    assert _members(second) == _pairs(people[3:], vip)
    assert _carriers(vip) == _ids(people)
    assert first.summary() == "Added “VIP” to 3 subscribers (4 already had it)."


def test_an_addition_and_a_removal_overlapping_leave_a_history_that_adds_up(people, vip):
    addition = _start(ADD, [vip])
    removal = _start(REMOVE, [vip])

    def remove_from_everyone_after_our_first_chunk(pk):
        if LabelOperation.objects.get(pk=pk).selected_count == 3:
            run_label_operation(removal.pk)

    run_label_operation(addition.pk, after_chunk=remove_from_everyone_after_our_first_chunk)

    assert _counts(addition) == (DONE, 7, 7, 7)
    assert _counts(removal) == (DONE, 7, 3, 3)
    assert _carriers(vip) == _ids(people[3:])
    assert _members(addition) - _members(removal) == _pairs(people[3:], vip)


def test_subscribers_created_during_an_operation_are_left_out_and_the_summary_is_exact(
    people, vip, make_subscriber, messenger
):
    operation = _start(ADD, [vip])
    newcomers = []

    def someone_arrives(pk):
        newcomers.append(make_subscriber())
        actions.upsert_subscriber(messenger, f"late-{len(newcomers)}", {"first_name": "Late"})

    operation = run_label_operation(operation.pk, after_chunk=someone_arrives)

    assert LabelOperation.objects.get(pk=operation.pk).max_subscriber_id == people[-1].pk
    assert _counts(operation) == (DONE, 7, 7, 7)
    assert _carriers(vip) == _ids(people)
    assert operation.summary() == "Added “VIP” to 7 subscribers (0 already had it)."


def test_subscribers_deleted_during_an_operation_are_not_counted(people, vip):
    operation = _start(ADD, [vip])

    def someone_leaves(pk):
        if LabelOperation.objects.get(pk=pk).selected_count == 3:
            people[4].delete()

    operation = run_label_operation(operation.pk, after_chunk=someone_leaves)

    assert (operation.total_count, *_counts(operation)) == (7, DONE, 6, 6, 6)
    assert operation.summary() == "Added “VIP” to 6 subscribers (0 already had it)."


def test_add_labels_and_remove_labels_take_a_list_or_a_queryset(people, vip, make_label):
    newsletter = make_label("Newsletter")

    assert add_labels(people[:4], [vip, newsletter]) == 8
    assert add_labels(type(people[0]).objects.all(), [vip.pk]) == 3
    assert remove_labels([person.pk for person in people[2:]], [vip]) == 5

    assert _carriers(vip) == _ids(people[:2])
    assert LabelOperation.objects.filter(status=DONE, source=LabelSource.BULK).count() == 3
    assert add_labels([], [vip]) == 0


# Label deletion ------------------------------------------------------------------------------------------


def test_deleting_a_label_nobody_carries_deletes_it_at_once(vip):
    assert delete_label(vip) is None

    assert not Label.objects.filter(pk=vip.pk).exists()
    assert not LabelOperation.objects.exists()


def test_deleting_a_small_label_takes_it_away_now_and_keeps_the_history(people, vip, operator):
    _give(people[:4], vip)
    vip_pk = vip.pk

    operation = delete_label(vip, by=operator)

    assert not Label.objects.filter(pk=vip_pk).exists()
    assert (operation.source, operation.delete_label, operation.created_by) == (
        LabelSource.LABEL_DELETED,
        None,
        operator,
    )
    assert _counts(operation) == (DONE, 4, 4, 4)
    assert _members(operation) == {(person.pk, vip_pk) for person in people[:4]}
    assert operation.summary() == "Removed “vip” from 4 subscribers (0 did not have it)."
    [entry] = label_history(people[0], limit=10)
    assert (entry.action, entry.label_name, entry.operation, entry.by) == (
        LabelChangeAction.REMOVED,
        "vip",
        operation,
        operator,
    )


def test_deleting_a_large_label_runs_in_the_background_then_deletes_it(
    people, vip, settings, queue, django_capture_on_commit_callbacks
):
    settings.BULK_BACKGROUND_THRESHOLD = 3
    _give(people[:5], vip)

    with django_capture_on_commit_callbacks(execute=True):
        operation = delete_label(vip)

    assert operation.status == PENDING
    assert _queued(queue) == [(continue_label_operation.module_path, [operation.pk])]
    assert Label.objects.filter(pk=vip.pk).exists()
    assert _carriers(vip) == _ids(people[:5])

    continue_label_operation.call(operation.pk)

    assert not Label.objects.filter(pk=vip.pk).exists()
    assert _counts(operation) == (DONE, 5, 5, 5)
    assert operation.delete_label is None
    assert _members(operation) == {(person.pk, vip.pk) for person in people[:5]}


def test_a_label_given_to_someone_during_its_deletion_is_taken_from_them_too(
    people, vip, make_subscriber, settings, django_capture_on_commit_callbacks
):
    settings.BULK_BACKGROUND_THRESHOLD = 1
    Endpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s", events=[Event.LABELS_CHANGED])
    _give(people[:2], vip)
    with django_capture_on_commit_callbacks(execute=True):
        operation = delete_label(vip)
    latecomer = make_subscriber()
    change_labels(latecomer, add=[vip])
    Delivery.objects.all().delete()

    operation = run_label_operation(operation.pk)

    assert not Label.objects.filter(pk=vip.pk).exists()
    assert not SubscriberLabel.objects.exists()
    assert _counts(operation) == (DONE, 3, 3, 3)
    assert _members(operation) == {(person.pk, vip.pk) for person in [*people[:2], latecomer]}
    bodies = [json.loads(body)["data"] for body in Delivery.objects.values_list("body", flat=True)]
    assert {body["batch"] for body in bodies} == {f"operation-{operation.pk}"}
    assert sorted(row["id"] for body in bodies for row in body["subscribers"]) == [
        people[0].pk,
        people[1].pk,
        latecomer.pk,
    ]


def test_a_crash_while_deleting_a_label_leaves_it_for_the_resumed_run(people, vip, settings, monkeypatch):
    settings.BULK_BACKGROUND_THRESHOLD = 1
    _give(people, vip)
    operation = delete_label(vip)
    _crash_on_call(monkeypatch, actions.label_actions, "delete_unused_label", 1)

    with pytest.raises(Crash):
        run_label_operation(operation.pk)

    assert _counts(operation) == (RUNNING, 6, 6, 6)
    assert _carriers(vip) == {people[6].pk}

    operation = run_label_operation(operation.pk)

    assert not Label.objects.filter(pk=vip.pk).exists()
    assert _counts(operation) == (DONE, 7, 7, 7)
    assert _members(operation) == {(person.pk, vip.pk) for person in people}


# A filter that no longer applies -------------------------------------------------------------------------


def test_an_operation_whose_filter_names_a_label_deleted_meanwhile_fails_with_the_reason(people, vip, make_label):
    old = make_label("Old", name="old")
    _give(people, old)
    operation = _start(ADD, [vip], selection={"filters": {"label": ["old"]}})

    def delete_old_after_our_first_chunk(pk):
        if LabelOperation.objects.get(pk=pk).selected_count == 3:
            delete_label(old)

    operation = run_label_operation(operation.pk, after_chunk=delete_old_after_our_first_chunk)

    assert _counts(operation) == (FAILED, 3, 3, 3)
    assert "There is no label named “old”; it may have been deleted." in operation.error
    assert operation.finished_at is not None
    assert _carriers(vip) == _ids(people[:3])


# Dates and webhooks --------------------------------------------------------------------------------------


def test_no_label_change_moves_the_profile_date(people, vip, make_label, operator, settings):
    settings.BULK_BACKGROUND_THRESHOLD = 100
    long_ago = timezone.now() - timedelta(days=400)
    type(people[0]).objects.update(updated_at=long_ago)
    churned = make_label("Churned")
    _give(people[:2], churned)

    operation = run_label_operation(_start(ADD, [vip]).pk)
    undo_label_operation(operation, by=operator)
    add_labels(people, [vip])
    remove_labels(people[:3], [vip])
    change_labels(people[5], add=[churned], remove=[vip])
    delete_label(churned)

    assert set(type(people[0]).objects.values_list("updated_at", flat=True)) == {long_ago}


def _subscribers(body):
    return json.loads(body)["data"]["subscribers"]


def test_each_chunk_announces_the_subscribers_it_changed_and_no_others(
    people, vip, queue, django_capture_on_commit_callbacks
):
    Endpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s", events=[Event.LABELS_CHANGED])
    _give([people[1], *people[3:6]], vip)

    with django_capture_on_commit_callbacks(execute=True):
        operation = run_label_operation(_start(ADD, [vip]).pk)

    payloads = [json.loads(body) for body in Delivery.objects.order_by("pk").values_list("body", flat=True)]
    assert [payload["event"] for payload in payloads] == ["subscriber.labels_changed"] * 2
    assert [[row["id"] for row in payload["data"]["subscribers"]] for payload in payloads] == [
        [people[0].pk, people[2].pk],
        [people[6].pk],
    ]
    assert payloads[0]["data"]["subscribers"][0] == {
        "id": people[0].pk,
        "channel": "messenger",
        "foreign_id": people[0].foreign_id,
    }
    for payload in payloads:
        assert payload["data"]["batch"] == f"operation-{operation.pk}"
        assert payload["data"]["operation"] == operation.pk
        assert (payload["data"]["added"], payload["data"]["removed"]) == ([{"name": "vip", "title": "VIP"}], [])
    assert len(queue.results) == 2


def test_an_undo_announces_the_removals(people, vip, operator, django_capture_on_commit_callbacks):
    Endpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s", events=[Event.LABELS_CHANGED])
    operation = run_label_operation(_start(ADD, [vip], selection=_ticked(people[:2])).pk)
    Delivery.objects.all().delete()

    undo = undo_label_operation(operation, by=operator)

    [payload] = [json.loads(body)["data"] for body in Delivery.objects.values_list("body", flat=True)]
    assert (payload["operation"], payload["added"], payload["removed"]) == (
        undo.pk,
        [],
        [{"name": "vip", "title": "VIP"}],
    )
    assert [row["id"] for row in payload["subscribers"]] == [people[0].pk, people[1].pk]


def test_an_undo_whose_label_is_deleted_meanwhile_gives_back_only_what_still_exists(people, vip, operator, settings):
    _give(people, vip)
    operation = run_label_operation(_start(REMOVE, [vip]).pk)
    settings.BULK_BACKGROUND_THRESHOLD = 1
    undo = undo_label_operation(operation, by=operator)
    settings.BULK_BACKGROUND_THRESHOLD = 100
    deleted = []

    def delete_vip_after_our_first_chunk(pk):
        if not deleted:
            deleted.append(delete_label(vip))

    undo = run_label_operation(undo.pk, after_chunk=delete_vip_after_our_first_chunk)

    assert not Label.objects.filter(pk=vip.pk).exists()
    assert _counts(undo) == (DONE, 3, 3, 3)
    assert _counts(deleted[0]) == (DONE, 3, 3, 3)
    assert not SubscriberLabel.objects.exists()


# Errors that would come back at every resume ------------------------------------------------------------


def test_a_bug_stops_the_operation_with_the_reason_and_what_it_changed_can_be_undone(people, vip, monkeypatch):
    operation = _start("add", [vip])
    _crash_on_call(monkeypatch, actions, CHANGE_STEP, 2, error=RuntimeError("something broke"))
    run_label_operation(operation.pk)
    operation.refresh_from_db()
    assert (operation.status, operation.error) == ("failed", "RuntimeError: something broke")
    assert operation.changed_count == 3, "the first chunk stays, counted"
    assert operation.can_undo
    undo = undo_label_operation(operation, by=None)
    assert undo.status == "done" and not _carriers(vip)


def test_a_label_deleted_while_its_change_runs_stops_the_change(people, vip, make_label, monkeypatch):
    other = make_label("Other")
    operation = _start("add", [vip, other])
    original = events.labels_changed

    def delete_after_the_first_chunk(*args, **kwargs):
        original(*args, **kwargs)
        if Label.objects.filter(pk=other.pk).exists():
            SubscriberLabel.objects.filter(label=other).delete()
            Label.objects.filter(pk=other.pk).delete()

    monkeypatch.setattr(events, "labels_changed", delete_after_the_first_chunk)
    run_label_operation(operation.pk)
    operation.refresh_from_db()
    assert operation.status == "failed"
    assert operation.error == "A label of this change was deleted while it ran; it stopped there."


def test_a_label_renamed_while_its_deletion_waits_is_still_deleted(people, vip, settings):
    settings.BULK_BACKGROUND_THRESHOLD = 2
    _give(people, vip)
    operation = delete_label(vip)
    assert operation.status == "pending"
    Label.objects.filter(pk=vip.pk).update(name="renamed", title="Renamed")
    operation = run_label_operation(operation.pk)
    assert operation.status == "done"
    assert not Label.objects.filter(pk=vip.pk).exists()
    assert operation.changed_subscribers == len(people)
