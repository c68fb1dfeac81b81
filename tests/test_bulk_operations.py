import pytest
from django_tasks_db.models import DBTaskResult

from subscribers import actions
from subscribers.actions import request_label_operation
from subscribers.models import LabelChange, LabelOperation, LabelSource, SubscriberLabel
from subscribers.tasks import run_bulk_label_operation

pytestmark = pytest.mark.django_db


@pytest.fixture
def crowd(make_subscriber):
    return [make_subscriber(locale="fr-FR") for _ in range(3)] + [make_subscriber(locale="en-US") for _ in range(2)]


def test_a_small_operation_runs_at_once_on_the_filtered_subscribers(crowd, make_label, operator):
    vip = make_label("VIP")
    operation = request_label_operation(
        "add", [vip], by=operator, source=LabelSource.BULK, selection={"filters": {"locale": ["fr"]}}, expected_count=3
    )
    assert (operation.status, operation.selected_count, operation.changed_count) == ("done", 3, 3)
    assert operation.summary() == "Added 'VIP' to 3 subscribers (0 already had it)."
    assert set(SubscriberLabel.objects.values_list("subscriber", flat=True)) == {s.pk for s in crowd[:3]}


def test_ticked_rows_are_intersected_with_the_filter(crowd, make_label, operator):
    vip = make_label("VIP")
    selection = {"filters": {"locale": ["fr"]}, "ids": [crowd[0].pk, crowd[4].pk]}
    request_label_operation("add", [vip], by=operator, source=LabelSource.BULK, selection=selection, expected_count=2)
    assert list(SubscriberLabel.objects.values_list("subscriber", flat=True)) == [crowd[0].pk]


def test_an_invalid_stored_filter_fails_clearly_and_changes_nothing(crowd, make_label, operator):
    vip = make_label("VIP")
    with pytest.raises(ValueError, match="no label named"):
        request_label_operation(
            "add",
            [vip],
            by=operator,
            source=LabelSource.BULK,
            selection={"filters": {"label": ["deleted_label"]}},
            expected_count=1,
        )
    assert not SubscriberLabel.objects.exists()


def test_a_large_operation_runs_in_the_background_worker(
    crowd, make_label, operator, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(actions, "BACKGROUND_THRESHOLD", 2)
    vip = make_label("VIP")
    with django_capture_on_commit_callbacks(execute=True):
        operation = request_label_operation(
            "add", [vip], by=operator, source=LabelSource.BULK, selection={"filters": {}}, expected_count=5
        )
    assert operation.status == "pending"
    assert not SubscriberLabel.objects.exists()

    queued = DBTaskResult.objects.get()
    assert (queued.task_path, queued.args_kwargs["args"]) == (
        "subscribers.tasks.run_bulk_label_operation",
        [operation.pk],
    )
    # What `manage.py db_worker` does with it (the worker itself closes connections, which a test cannot).
    run_bulk_label_operation.call(*queued.args_kwargs["args"])

    operation.refresh_from_db()
    assert (operation.status, operation.selected_count, operation.changed_count) == ("done", 5, 5)
    assert operation.duration is not None
    assert LabelChange.objects.filter(operation=operation, source="bulk", changed_by=operator).count() == 5


def test_a_failed_operation_says_why(crowd, make_label, operator):
    vip = make_label("VIP")
    operation = actions.start_label_operation("add", [vip], by=operator, source=LabelSource.BULK, filters={})

    class Broken(Exception):
        pass

    def explode(*args, **kwargs):
        raise Broken("disk full")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(actions, "add_labels", explode)
        with pytest.raises(Broken):
            actions.run_label_operation(operation, crowd[0].__class__.objects.all())
    operation.refresh_from_db()
    assert (operation.status, operation.error) == (LabelOperation.Status.FAILED, "disk full")


def test_the_task_does_not_run_an_operation_twice(crowd, make_label, operator):
    vip = make_label("VIP")
    operation = actions.start_label_operation("add", [vip], by=operator, source=LabelSource.BULK, filters={})
    run_bulk_label_operation.call(operation.pk)
    SubscriberLabel.objects.all().delete()
    run_bulk_label_operation.call(operation.pk)
    assert not SubscriberLabel.objects.exists()
