"""Label groups (issue 14): the group dialogs, exclusivity on every write path, the conflict refusal, filters."""

import io
import json

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.urls import reverse

from labels.models import Label, LabelGroup
from subscribers import actions, imports
from subscribers.actions import ExclusiveClash, add_labels, change_labels, run_label_operation
from subscribers.models import (
    LabelChange,
    LabelOperation,
    LabelOperationMember,
    LabelSource,
    Subscriber,
    SubscriberLabel,
)

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def plan(db):
    return LabelGroup.objects.create(title="Plan", name="plan", exclusive=True)


@pytest.fixture
def free(make_label, plan):
    return make_label("Free", name="free", group=plan)


@pytest.fixture
def pro(make_label, plan):
    return make_label("Pro", name="pro", group=plan)


@pytest.fixture
def enterprise(make_label, plan):
    return make_label("Enterprise", name="enterprise", group=plan)


@pytest.fixture
def vip(make_label):
    return make_label("VIP", name="vip")


def names(subscriber):
    return sorted(SubscriberLabel.objects.filter(subscriber=subscriber).values_list("label__name", flat=True))


# --- The group dialogs and the Labels page ---------------------------------------------------------


def test_a_label_manager_adds_a_group_with_a_generated_name(client, label_manager):
    client.force_login(label_manager)
    response = client.post(
        reverse("labels:group_add"),
        {"title": "Stage", "description": "Where they are", "exclusive": "on"},
        headers=HTMX,
    )
    assert response.status_code == 204
    group = LabelGroup.objects.get()
    assert (group.title, group.name, group.exclusive) == ("Stage", "stage", True)


def test_a_duplicate_group_title_is_refused(client, label_manager, plan):
    client.force_login(label_manager)
    response = client.post(reverse("labels:group_add"), {"title": "PLAN"}, headers=HTMX)
    assert response.status_code == 422
    assert "A label group with this title already exists." in response.text


def test_operators_may_not_add_or_edit_groups(client, operator, plan):
    client.force_login(operator)
    assert client.get(reverse("labels:group_add")).status_code == 403
    assert client.post(reverse("labels:group_edit", args=[plan.pk]), {"title": "X"}).status_code == 403
    plan.refresh_from_db()
    assert plan.title == "Plan"


def test_the_label_dialog_puts_a_label_in_a_group(client, label_manager, plan):
    client.force_login(label_manager)
    response = client.post(reverse("labels:add"), {"title": "Gold", "group": plan.pk}, headers=HTMX)
    assert response.status_code == 204
    assert Label.objects.get(name="gold").group == plan


def test_the_labels_page_shows_and_filters_by_group(client, operator, free, pro, vip):
    client.force_login(operator)
    response = client.get(reverse("labels:list"))
    assert 'href="/labels/?group=plan">Plan</a>' in response.text
    response = client.get(reverse("labels:list"), {"group": "plan"})
    assert "VIP" not in response.text.split('id="labels"')[1]
    assert ">Free<" in response.text and ">Pro<" in response.text
    response = client.get(reverse("labels:list"), {"group": "-"})
    assert ">Free<" not in response.text.split('id="labels"')[1]


# --- Deleting a group: its labels stay, in no group --------------------------------------------------


def test_the_delete_dialog_says_how_many_labels_stay_ungrouped(client, label_manager, free, pro, enterprise):
    client.force_login(label_manager)
    page = client.get(reverse("labels:list"), {"group": "plan"})
    assert reverse("labels:group_delete", args=[free.group.pk]) in page.text
    response = client.get(reverse("labels:group_delete", args=[free.group.pk]), headers=HTMX)
    assert response.status_code == 200
    assert "Delete the group “Plan”?" in response.text
    assert "The 3 labels of “Plan” stay, in no group." in response.text


def test_deleting_a_group_keeps_its_labels_and_who_carries_them(
    client, label_manager, make_subscriber, free, pro, enterprise, vip
):
    ada = make_subscriber()
    change_labels(ada, add=[free, vip])
    changes = LabelChange.objects.count()
    client.force_login(label_manager)
    response = client.post(reverse("labels:group_delete", args=[free.group.pk]), headers=HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == reverse("labels:list")
    assert not LabelGroup.objects.exists()
    assert set(Label.objects.filter(group=None).values_list("name", flat=True)) == {"free", "pro", "enterprise", "vip"}
    assert names(ada) == ["free", "vip"]
    assert LabelChange.objects.count() == changes  # nobody lost or gained a label
    page = client.get(reverse("labels:list"))
    assert "Label group “Plan” deleted; its 3 labels stay, in no group." in page.text


def test_deleting_an_empty_group_says_it_holds_no_label(client, label_manager):
    empty = LabelGroup.objects.create(title="Stage", name="stage")
    client.force_login(label_manager)
    assert "“Stage” holds no label." in client.get(reverse("labels:group_delete", args=[empty.pk])).text
    response = client.post(reverse("labels:group_delete", args=[empty.pk]))
    assert response.status_code == 302 and response.url == reverse("labels:list")
    assert not LabelGroup.objects.exists()


def test_operators_may_not_delete_groups(client, operator, free):
    client.force_login(operator)
    assert client.get(reverse("labels:group_delete", args=[free.group.pk])).status_code == 403
    assert client.post(reverse("labels:group_delete", args=[free.group.pk])).status_code == 403
    assert LabelGroup.objects.exists()
    assert (
        reverse("labels:group_delete", args=[free.group.pk])
        not in client.get(reverse("labels:list"), {"group": "plan"}).text
    )


def test_a_vanished_group_is_a_404(client, label_manager):
    client.force_login(label_manager)
    assert client.post(reverse("labels:group_delete", args=[999])).status_code == 404


def test_the_admin_deletes_a_group_through_the_same_action(client, admin_user, free, pro):
    client.force_login(admin_user)
    response = client.post(reverse("admin:labels_labelgroup_delete", args=[free.group.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not LabelGroup.objects.exists()
    assert Label.objects.filter(group=None).count() == 2


@pytest.mark.parametrize("how_many", [2, 20])
def test_the_labels_page_runs_the_same_queries_with_groups(
    client, label_manager, make_label, make_subscriber, how_many, django_assert_num_queries
):
    groups = [LabelGroup.objects.create(title=f"Group {n}", name=f"group_{n}", exclusive=n % 2 == 0) for n in range(3)]
    labels = [make_label(f"Label {n}", group=groups[n % 3]) for n in range(how_many)]
    add_labels([make_subscriber()], labels[:1])
    client.force_login(label_manager)
    # 1. the session, 2. the user, 3. the user's own permissions, 4. those of the user's groups,
    # 5. COUNT the labels, 6. the page of labels with their groups, 7. their subscriber counts,
    # 8. the label groups for the filter
    with django_assert_num_queries(8):
        response = client.get(reverse("labels:list"))
    assert response.text.count("?group=group_") == how_many


# --- Making a group exclusive, putting a label in one -------------------------------------------------


def test_making_a_group_exclusive_is_refused_while_people_carry_several_of_its_labels(
    client, label_manager, make_subscriber, free, pro, enterprise
):
    plan = free.group
    plan.exclusive = False
    plan.save()
    both = [make_subscriber(), make_subscriber()]
    for subscriber in both:
        change_labels(subscriber, add=[free, pro])
    change_labels(make_subscriber(), add=[enterprise])
    client.force_login(label_manager)

    response = client.post(
        reverse("labels:group_edit", args=[plan.pk]), {"title": "Plan", "name": "plan", "exclusive": "on"}, headers=HTMX
    )

    assert response.status_code == 422
    assert "2 subscribers carry several labels of this group" in response.text
    link = "/subscribers/?group=plan&amp;group_mode=several"
    assert link in response.text
    plan.refresh_from_db()
    assert not plan.exclusive
    listed = client.get("/subscribers/", {"group": "plan", "group_mode": "several"})
    assert sorted(listed.context["table"].data.data.values_list("pk", flat=True)) == sorted(s.pk for s in both)


def test_a_group_is_made_exclusive_once_nobody_carries_two_of_its_labels(client, label_manager, free, pro):
    plan = free.group
    plan.exclusive = False
    plan.save()
    client.force_login(label_manager)
    response = client.post(
        reverse("labels:group_edit", args=[plan.pk]), {"title": "Plan", "name": "plan", "exclusive": "on"}, headers=HTMX
    )
    assert response.status_code == 204
    plan.refresh_from_db()
    assert plan.exclusive


def test_a_label_joining_an_exclusive_group_its_carriers_clash_with_is_refused(
    client, label_manager, make_subscriber, free, vip
):
    change_labels(make_subscriber(), add=[free, vip])
    client.force_login(label_manager)
    response = client.post(
        reverse("labels:edit", args=[vip.pk]), {"title": "VIP", "name": "vip", "group": free.group.pk}, headers=HTMX
    )
    assert response.status_code == 422
    assert "1 subscriber carries this label and another of the group" in response.text
    vip.refresh_from_db()
    assert vip.group is None


def test_the_admin_refuses_making_a_group_exclusive_too(client, admin_user, make_subscriber, free, pro):
    plan = free.group
    LabelGroup.objects.filter(pk=plan.pk).update(exclusive=False)
    change_labels(make_subscriber(), add=[free, pro])
    client.force_login(admin_user)
    url = reverse("admin:labels_labelgroup_change", args=[plan.pk])
    response = client.post(url, {"title": "Plan", "name": "plan", "exclusive": "on", "description": ""})
    assert response.status_code == 200
    assert "1 subscriber carries several labels of this group" in response.text
    assert not LabelGroup.objects.get(pk=plan.pk).exclusive


# --- One subscriber: the action, the dialog, the API ------------------------------------------------


def test_giving_a_label_of_an_exclusive_group_takes_the_others_away_and_says_why(make_subscriber, operator, free, pro):
    ada = make_subscriber()
    change_labels(ada, add=[free], by=operator)
    added, removed = change_labels(ada, add=[pro], by=operator)

    assert (added, removed) == (1, 1)
    assert names(ada) == ["pro"]
    change = LabelChange.objects.get(label=free, action="removed")
    assert (change.source, change.changed_by) == (LabelSource.EXCLUSIVE_GROUP, operator)


def test_non_exclusive_groups_keep_every_label(make_subscriber, free, pro):
    LabelGroup.objects.filter(pk=free.group_id).update(exclusive=False)
    ada = make_subscriber()
    change_labels(ada, add=[free])
    change_labels(ada, add=[pro])
    assert names(ada) == ["free", "pro"]


def test_two_labels_of_one_exclusive_group_at_once_change_nothing(make_subscriber, free, pro, vip):
    ada = make_subscriber()
    with pytest.raises(ExclusiveClash):
        change_labels(ada, add=[free, pro, vip])
    assert names(ada) == []


def test_the_manage_labels_dialog_shows_an_exclusive_group_as_radio_buttons(
    client, operator, make_subscriber, free, pro, vip
):
    ada = make_subscriber()
    change_labels(ada, add=[free])
    client.force_login(operator)
    html = client.get(reverse("subscribers:labels", args=[ada.pk]), headers=HTMX).text
    assert f'type="radio" name="group-{free.group_id}" value=""' in html
    assert (
        f'type="radio" name="group-{free.group_id}" value="{free.pk}" id="group-{free.group_id}-{free.pk}" checked'
        in html
    )
    assert f'type="checkbox" name="labels" value="{vip.pk}"' in html
    assert f'type="checkbox" name="labels" value="{free.pk}"' not in html


def test_picking_another_radio_in_the_dialog_swaps_the_label(client, operator, make_subscriber, free, pro, vip):
    ada = make_subscriber()
    change_labels(ada, add=[free, vip])
    client.force_login(operator)
    data = {"labels": [vip.pk], "labels_before": [free.pk, vip.pk], f"group-{free.group_id}": pro.pk}
    response = client.post(reverse("subscribers:labels", args=[ada.pk]), data, headers=HTMX)
    assert response.status_code == 204
    assert names(ada) == ["pro", "vip"]
    data = {"labels": [vip.pk], "labels_before": [pro.pk, vip.pk], f"group-{free.group_id}": ""}
    client.post(reverse("subscribers:labels", args=[ada.pk]), data, headers=HTMX)
    assert names(ada) == ["vip"]


def test_the_api_refuses_two_labels_of_one_exclusive_group_naming_them(api_client, make_subscriber, free, pro):
    ada = make_subscriber(foreign_id="psid-1")
    response = api_client.post(
        "/api/v1/channels/messenger/subscribers/psid-1/labels",
        json.dumps({"add": ["free", "pro"]}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["exclusive"] == [["free", "pro"]]
    assert "“free”, “pro” belong to one exclusive group" in response.json()["detail"]
    assert names(ada) == []


def test_the_api_swaps_a_label_of_an_exclusive_group(api_client, make_subscriber, free, pro):
    ada = make_subscriber(foreign_id="psid-1")
    change_labels(ada, add=[free])
    response = api_client.post(
        "/api/v1/channels/messenger/subscribers/psid-1/labels",
        json.dumps({"add": ["pro"]}),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert [label["name"] for label in response.json()["labels"]] == ["pro"]
    assert LabelChange.objects.get(label=free, action="removed").source == LabelSource.EXCLUSIVE_GROUP


# --- Bulk changes -----------------------------------------------------------------------------------


def test_a_bulk_addition_takes_the_groups_other_labels_away_recorded_beside_it(make_subscriber, operator, free, pro):
    crowd = [make_subscriber() for _ in range(5)]
    add_labels(crowd[:3], [free])
    change_labels(crowd[3], add=[pro])

    add_labels(crowd, [pro], by=operator)

    assert all(names(subscriber) == ["pro"] for subscriber in crowd)
    removal = LabelOperation.objects.get(source=LabelSource.EXCLUSIVE_GROUP)
    addition = LabelOperation.objects.get(pk=removal.filters["exclusive_for"])
    assert (removal.kind, removal.changed_count, removal.label_names) == ("remove", 3, ["free"])
    assert addition.changed_count == 4
    members = LabelOperationMember.objects.filter(operation=removal).values_list("subscriber_id", flat=True)
    assert sorted(members) == sorted(s.pk for s in crowd[:3])


def test_undoing_the_exclusivity_removal_gives_the_labels_back_and_takes_the_new_one(
    make_subscriber, operator, free, pro
):
    crowd = [make_subscriber() for _ in range(2)]
    add_labels(crowd, [free])
    add_labels(crowd, [pro], by=operator)
    removal = LabelOperation.objects.get(source=LabelSource.EXCLUSIVE_GROUP)

    actions.undo_label_operation(removal, by=operator)

    assert all(names(subscriber) == ["free"] for subscriber in crowd)


def test_a_bulk_addition_of_two_labels_of_one_exclusive_group_is_refused(make_subscriber, free, pro):
    make_subscriber()
    with pytest.raises(ExclusiveClash):
        actions.start_label_operation("add", [free, pro], source=LabelSource.BULK, selection={"filters": {}})
    assert not LabelOperation.objects.exists()


def test_the_bulk_confirmation_counts_who_loses_the_groups_other_labels(client, operator, make_subscriber, free, pro):
    crowd = [make_subscriber() for _ in range(4)]
    add_labels(crowd[:3], [free])
    client.force_login(operator)
    data = {"kind": "add", "ids": [s.pk for s in crowd], "labels": [pro.pk]}
    response = client.post(reverse("subscribers:bulk_labels"), data, headers=HTMX)
    assert "… and 3 of them lose “Free” (its group is exclusive)." in response.text
    data["labels"] = [free.pk, pro.pk]
    response = client.post(reverse("subscribers:bulk_labels"), data, headers=HTMX)
    assert response.status_code == 422
    assert "“Free”, “Pro” belong to one exclusive group" in response.text


def test_a_chunk_of_a_bulk_addition_runs_the_same_queries_with_exclusive_groups(
    make_subscriber, operator, free, pro, how_many=3
):
    crowd = [make_subscriber() for _ in range(how_many)]
    operation = actions.start_label_operation(
        "add", [pro], by=operator, source=LabelSource.BULK, selection={"filters": {}, "ids": [s.pk for s in crowd]}
    )
    assert run_label_operation(operation.pk).changed_count == how_many


def test_the_admin_bulk_action_takes_the_others_away_too(client, admin_user, make_subscriber, free, pro):
    crowd = [make_subscriber() for _ in range(2)]
    add_labels(crowd, [free])
    client.force_login(admin_user)
    data = {
        "action": "add_labels_to_selected",
        "_selected_action": [s.pk for s in crowd],
        "labels": [pro.pk],
        "apply": "1",
        "confirm": "1",
    }
    client.post(reverse("admin:subscribers_subscriber_changelist"), data)
    assert all(names(subscriber) == ["pro"] for subscriber in crowd)


# --- Imports ----------------------------------------------------------------------------------------


def _import(text):
    job = imports.record_upload(imports.store_file(io.BytesIO(text.encode()), "people.csv"))
    actions.start_subscriber_import(job, dry_run=False, background=False)
    return actions.run_subscriber_import(job.pk)


def test_an_import_giving_a_label_of_an_exclusive_group_takes_the_others_away(make_subscriber, free, pro):
    ada = make_subscriber(foreign_id="1")
    change_labels(ada, add=[free])
    job = _import("channel,foreign_id,labels\nmessenger,1,pro\nmessenger,2,free|pro\n")

    assert names(ada) == ["pro"]
    assert job.labels_removed == 1
    assert LabelOperation.objects.get(source=LabelSource.EXCLUSIVE_GROUP).filters["exclusive_for"] == (
        job.add_operation_id
    )
    reasons = list(job.problems.values_list("row", "reason"))
    assert reasons == [(3, "“Free”, “Pro” belong to one exclusive group: a subscriber can carry only one of them.")]
    assert not Subscriber.objects.filter(foreign_id="2").exists()


def test_an_import_replacing_labels_keeps_exclusivity(make_subscriber, free, pro):
    ada = make_subscriber(foreign_id="1")
    change_labels(ada, add=[free])
    job = imports.record_upload(
        imports.store_file(io.BytesIO(b"channel,foreign_id,labels\nmessenger,1,pro\n"), "people.csv")
    )
    job.replace_labels = True
    job.save()
    actions.start_subscriber_import(job, dry_run=False, background=False)
    actions.run_subscriber_import(job.pk)
    assert names(ada) == ["pro"]


# --- The Subscribers page's group filter -------------------------------------------------------------


def test_the_group_filter_selects_any_none_or_several(client, operator, make_subscriber, free, pro, vip):
    LabelGroup.objects.filter(pk=free.group_id).update(exclusive=False)
    one, two, other, bare = (make_subscriber() for _ in range(4))
    change_labels(one, add=[free])
    change_labels(two, add=[free, pro])
    change_labels(other, add=[vip])
    client.force_login(operator)

    def listed(**params):
        response = client.get("/subscribers/", params)
        return sorted(response.context["table"].data.data.values_list("pk", flat=True))

    assert listed(group="plan") == sorted([one.pk, two.pk])
    assert listed(group="plan", group_mode="none") == sorted([other.pk, bare.pk])
    assert listed(group="plan", group_mode="several") == [two.pk]
    response = client.get("/subscribers/", {"group": "ghost"})
    assert "There is no label group named “ghost”" in response.text


# --- Demo data --------------------------------------------------------------------------------------


def test_the_demo_data_has_an_exclusive_plan_group_nobody_breaks():
    call_command("seed_demo", subscribers=200, labels=3, plan_group=True, stdout=io.StringIO())
    group = LabelGroup.objects.get(name="plan")
    assert group.exclusive
    assert sorted(group.labels.values_list("title", flat=True)) == ["Plan: enterprise", "Plan: free", "Plan: pro"]
    carriers = SubscriberLabel.objects.filter(label__group=group)
    assert carriers.count() > 50
    assert not carriers.values("subscriber").annotate(n=Count("*")).filter(n__gt=1).exists()
    before = carriers.count()
    call_command("seed_demo", subscribers=200, labels=3, plan_group=True, stdout=io.StringIO())
    assert carriers.count() == before


def test_the_subscribers_history_says_why_a_label_was_taken_away(client, operator, make_subscriber, free, pro):
    ada = make_subscriber()
    change_labels(ada, add=[free], by=operator)
    change_labels(ada, add=[pro], by=operator)
    add_labels([ada], [free], by=operator)
    client.force_login(operator)
    html = client.get(reverse("subscribers:detail", args=[ada.pk])).text
    assert html.count("Another label of its exclusive group given") == 2


def test_a_hand_made_dialog_post_with_two_labels_of_one_exclusive_group_saves_nothing(
    client, operator, make_subscriber, free, pro
):
    ada = make_subscriber()
    client.force_login(operator)
    data = {"labels": [free.pk, pro.pk], "labels_before": []}
    response = client.post(reverse("subscribers:labels", args=[ada.pk]), data, headers=HTMX)
    assert response.status_code == 422
    assert "“Free”, “Pro” belong to one exclusive group" in response.text
    assert names(ada) == []
