"""GET /api/v1/label-changes and /api/v1/label-operations/{id}/members: the feed of label changes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from subscribers import actions
from subscribers.models import LabelChange, LabelOperation, LabelSource

pytestmark = pytest.mark.django_db


@pytest.fixture
def settled(monkeypatch):
    """Serve entries at once: the feed normally waits a few seconds for late commits."""
    from subscribers import queries

    monkeypatch.setattr(queries, "FEED_SETTLE", timedelta(0))


def _feed(api_client, after=""):
    response = api_client.get("/api/v1/label-changes", {"after": after, "limit": 2})
    assert response.status_code == 200, response.content
    return response.json()


def test_the_feed_lists_single_changes_and_bulk_operations_in_order(
    api_client, make_subscriber, make_label, operator, settled
):
    vip = make_label("VIP", name="vip")
    ada, bob = make_subscriber(foreign_id="ada"), make_subscriber(foreign_id="bob")
    actions.change_labels(ada, add=[vip], by=operator, source=LabelSource.API)
    operation = actions.run_label_operation(
        actions.start_label_operation(
            "add", [vip], by=operator, source=LabelSource.BULK, selection={"filters": {}, "ids": [ada.pk, bob.pk]}
        ).pk
    )
    actions.change_labels(bob, remove=[vip])

    page = _feed(api_client)
    assert [(item["type"], item["action"], item["labels"]) for item in page["items"]] == [
        ("change", "added", ["vip"]),
        ("operation", "added", ["vip"]),
    ]
    assert page["items"][0]["subscriber"]["foreign_id"] == "ada"
    assert page["items"][1]["subscribers_changed"] == 1, "ada had it already"
    rest = _feed(api_client, page["next_cursor"])
    assert [(item["type"], item["action"]) for item in rest["items"]] == [("change", "removed")]
    again = _feed(api_client, rest["next_cursor"])
    assert again == {"items": [], "next_cursor": rest["next_cursor"]}, "poll with the same cursor"

    members = api_client.get(page["items"][1]["members_url"]).json()
    assert members == {
        "items": [{"subscriber": {"id": bob.pk, "channel": bob.channel.name, "foreign_id": "bob"}, "label": "vip"}],
        "next_cursor": None,
    }
    assert LabelOperation.objects.get() == operation


def test_members_page_by_subscriber_and_label(api_client, make_subscriber, make_label, settled):
    labels = [make_label("A", name="a"), make_label("B", name="b")]
    people = [make_subscriber(foreign_id=f"p{n}") for n in range(3)]
    actions.add_labels(people, labels)
    url = f"/api/v1/label-operations/{LabelOperation.objects.get().pk}/members"
    seen, after = [], ""
    while True:
        page = api_client.get(url, {"after": after, "limit": 4}).json()
        seen += [(item["subscriber"]["foreign_id"], item["label"]) for item in page["items"]]
        after = page["next_cursor"]
        if after is None:
            break
    assert seen == [(f"p{n}", name) for n in range(3) for name in ("a", "b")]


def test_recent_entries_wait_until_earlier_transactions_have_committed(api_client, make_subscriber, make_label):
    actions.change_labels(make_subscriber(), add=[make_label("VIP")])
    assert _feed(api_client)["items"] == []
    LabelChange.objects.update(changed_at=timezone.now() - timedelta(minutes=1))
    assert len(_feed(api_client)["items"]) == 1


def test_a_forged_cursor_gets_422(api_client):
    response = api_client.get("/api/v1/label-changes", {"after": "bm9wZQ"})
    assert response.status_code == 422
