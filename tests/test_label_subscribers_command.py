"""`manage.py label_subscribers add|remove LABEL_NAME... [--filter QUERYSTRING] [--background]`."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import QueryDict
from django.tasks import task_backends

from subscribers import actions
from subscribers.actions import continue_label_operation
from subscribers.management.commands.label_subscribers import Command
from subscribers.models import LabelOperation, LabelSource, SubscriberLabel

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queue(settings):
    """A task backend that records what is enqueued without running it."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    return task_backends["default"]


@pytest.fixture
def french(make_subscriber):
    return [make_subscriber(locale="fr-FR") for _ in range(3)]


@pytest.fixture
def english(make_subscriber):
    return [make_subscriber(locale="en-US") for _ in range(2)]


@pytest.fixture
def vip(make_label):
    return make_label("VIP", name="vip")


@pytest.fixture
def newsletter(make_label):
    return make_label("Newsletter", name="newsletter")


@pytest.fixture
def run(capsys, monkeypatch):
    """Run the command as the shell does; return its exit status, standard output and standard error."""
    # The command line closes every connection when the command ends, which would end the test's transaction.
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)

    def run(*arguments):
        try:
            Command().run_from_argv(["manage.py", "label_subscribers", *arguments, "--skip-checks"])
            status = 0
        except SystemExit as exit:
            status = exit.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


def _carriers(label):
    return set(SubscriberLabel.objects.filter(label=label).values_list("subscriber_id", flat=True))


def _ids(subscribers):
    return {subscriber.pk for subscriber in subscribers}


def test_it_adds_labels_to_every_subscriber_without_a_filter(run, french, english, vip, newsletter):
    status, out, err = run("add", "vip", "newsletter")

    assert (status, err) == (0, "")
    assert _carriers(vip) == _carriers(newsletter) == _ids(french + english)
    operation = LabelOperation.objects.get()
    assert (operation.kind, operation.source, operation.status, operation.created_by) == (
        LabelOperation.Kind.ADD,
        LabelSource.COMMAND,
        LabelOperation.Status.DONE,
        None,
    )
    assert out.splitlines()[-1] == "Added “Newsletter”, “VIP”: 10 new assignments on 5 selected subscribers."


def test_it_removes_labels(run, french, english, vip):
    SubscriberLabel.objects.bulk_create(SubscriberLabel(subscriber=s, label=vip) for s in french)

    status, out, _err = run("remove", "vip")

    assert status == 0
    assert _carriers(vip) == set()
    assert out.splitlines()[-1] == "Removed “VIP” from 3 subscribers (2 did not have it)."


@pytest.mark.parametrize("query_string", ["locale=fr", "?locale=fr", "locale=fr&label=vip&label_mode=none"])
def test_the_filter_is_the_subscribers_page_query_string(run, french, english, vip, query_string):
    status, _out, _err = run("add", "vip", "--filter", query_string)

    assert status == 0
    assert _carriers(vip) == _ids(french)
    assert LabelOperation.objects.get().filters == {"filters": dict(_parsed(query_string))}


def _parsed(query_string):
    return QueryDict(query_string.lstrip("?")).lists()


def test_a_filter_on_several_labels_keeps_every_value(run, french, english, vip, newsletter, make_label):
    churned = make_label("Churned", name="churned")
    SubscriberLabel.objects.bulk_create(
        [SubscriberLabel(subscriber=french[0], label=vip), SubscriberLabel(subscriber=english[0], label=newsletter)]
    )

    status, _out, _err = run("add", "churned", "--filter", "label=vip&label=newsletter&channel=messenger")

    assert status == 0
    assert _carriers(churned) == {french[0].pk, english[0].pk}


def test_in_the_foreground_it_prints_progress_and_the_summary(run, french, english, vip, monkeypatch):
    monkeypatch.setattr(actions, "CHUNK_SIZE", 2)
    SubscriberLabel.objects.create(subscriber=french[1], label=vip)

    status, out, err = run("add", "vip")

    operation = LabelOperation.objects.get()
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        f"Bulk change #{operation.pk}: 5 subscribers selected.",
        "  2 of 5",
        "  4 of 5",
        "  5 of 5",
        "Added “VIP” to 4 subscribers (1 already had it).",
    ]


def test_in_the_background_it_prints_the_operation_id_and_queues_it(
    run, french, english, vip, queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        status, out, err = run("add", "vip", "--filter", "locale=en", "--background")

    operation = LabelOperation.objects.get()
    assert (status, out, err) == (0, f"{operation.pk}\n", "")
    assert operation.status == LabelOperation.Status.PENDING
    assert [(result.task.module_path, result.args) for result in queue.results] == [
        (continue_label_operation.module_path, [operation.pk])
    ]
    assert _carriers(vip) == set()

    continue_label_operation.call(operation.pk)

    assert _carriers(vip) == _ids(english)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["add", "vip", "ghost", "phantom"], "No label is named ghost, phantom. Nothing was changed."),
        (
            ["add", "vip", "--filter", "locale=fr&colour=red"],
            "--filter: colour is not a filter of the Subscribers page",
        ),
        (
            ["add", "vip", "--filter", "label=ghost"],
            "--filter: Labels: There is no label named “ghost”; it may have been deleted. Nothing was changed.",
        ),
        (["remove", "vip", "--filter", "gender=robot"], "--filter: Gender: "),
        (["add", "vip", "--filter", "created_after=someday"], "--filter: Created from: "),
    ],
    ids=["unknown-label", "unknown-parameter", "unknown-label-in-filter", "bad-choice", "bad-date"],
)
def test_a_mistake_exits_non_zero_with_a_clear_message_and_changes_nothing(
    run, french, vip, queue, django_capture_on_commit_callbacks, arguments, message
):
    SubscriberLabel.objects.create(subscriber=french[0], label=vip)

    with django_capture_on_commit_callbacks(execute=True):
        status, out, err = run(*arguments, "--background")

    assert status == 1
    assert out == ""
    assert err.startswith(f"CommandError: {message}")
    assert err.rstrip().endswith("Nothing was changed.")
    assert _carriers(vip) == {french[0].pk}
    assert not LabelOperation.objects.exists()
    assert queue.results == []


def test_an_unknown_label_raises_a_command_error_when_called_from_code(french, vip):
    with pytest.raises(CommandError, match="No label is named ghost") as error:
        call_command("label_subscribers", "add", "ghost")

    assert error.value.returncode == 1
    assert not LabelOperation.objects.exists()


def test_an_unknown_kind_is_refused_by_the_parser(run, vip):
    status, _out, err = run("toggle", "vip")

    assert status == 2
    assert "invalid choice: 'toggle'" in err
    assert not LabelOperation.objects.exists()
