"""Every URL pattern, requested by each role, answers as this table says (issue 15, "Tests").

A new view, or a new model in the admin, fails here until its expected statuses are added: so a
view without a permission check cannot reach CI unnoticed. Object URLs point at real objects.
"""

import io
import re

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.admin.sites import site
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from api.actions import create_api_key
from broadcasts.models import Broadcast, ConsoleMessage
from labels.models import Label, LabelGroup
from segments.models import Segment
from subscribers import imports
from subscribers.actions import add_labels, change_labels
from subscribers.models import LabelOperation, Subscriber, SubscriberImport
from webhooks.models import Delivery, Endpoint, Event
from webhooks.tasks import deliver

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "nobody", "operator", "label_manager", "staff", "superuser"]

# Each non-admin pattern: (method, {role: status}). 302 from the app is to the login page.
LOGIN = {"anonymous": 302, "nobody": 403, "operator": 200, "label_manager": 200, "staff": 403, "superuser": 200}
MANAGE_LABELS = {"anonymous": 302, "nobody": 403, "operator": 403, "label_manager": 200, "staff": 403, "superuser": 200}
# The import permission is nobody's by default (Operators do not get it): here only the superuser has it.
IMPORT = {**dict.fromkeys(ROLES, 403), "anonymous": 302, "superuser": 200}
PUBLIC = dict.fromkeys(ROLES, 200)
SIGNED_IN = {"anonymous": 302, **dict.fromkeys(ROLES[1:], 200)}
API = dict.fromkeys(ROLES, 401)  # the API takes keys, not sessions
STAFF_ONLY = {"anonymous": 302, **dict.fromkeys(ROLES[1:4], 403), "staff": 200, "superuser": 200}
# Broadcasters (no role here but the superuser) compose and send broadcasts; Operators see them.
BROADCASTER = {"anonymous": 302, **dict.fromkeys(ROLES[1:5], 403), "superuser": 200}
DONE_THEN_BACK = {**LOGIN, **dict.fromkeys(["operator", "label_manager", "superuser"], 302)}

EXPECTED = {
    "home": ("GET", {"anonymous": 302, **dict.fromkeys(ROLES[1:], 302)}),
    "login": ("GET", PUBLIC),
    "logout": ("GET", {"anonymous": 302, **dict.fromkeys(ROLES[1:], 405)}),  # logging out is a POST
    "password_change": ("GET", SIGNED_IN),
    "password_change_done": ("GET", SIGNED_IN),
    "password_reset": ("GET", PUBLIC),
    "password_reset_done": ("GET", PUBLIC),
    "password_reset_confirm": ("GET", PUBLIC),
    "password_reset_complete": ("GET", PUBLIC),
    "set_language": ("POST", dict.fromkeys(ROLES, 302)),
    "javascript-catalog": ("GET", PUBLIC),
    "favicon": ("GET", dict.fromkeys(ROLES, 301)),
    "subscribers:list": ("GET", LOGIN),
    "subscribers:detail": ("GET", LOGIN),
    "subscribers:row": ("GET", LOGIN),
    "subscribers:labels": ("GET", LOGIN),
    "subscribers:bulk_labels": ("GET", {**LOGIN, **dict.fromkeys(["operator", "label_manager", "superuser"], 422)}),
    "subscribers:operations": ("GET", LOGIN),
    "subscribers:operation": ("GET", LOGIN),
    "subscribers:operation_cancel": ("POST", DONE_THEN_BACK),
    "subscribers:operation_undo": ("POST", DONE_THEN_BACK),
    "subscribers:import": ("GET", IMPORT),
    "subscribers:import_detail": ("GET", IMPORT),
    "subscribers:import_cancel": ("POST", {**IMPORT, "superuser": 302}),
    "subscribers:import_rejects": ("GET", IMPORT),
    "subscribers:export": ("GET", LOGIN),
    "subscribers:export_download": ("GET", LOGIN),
    "broadcasts:list": ("GET", LOGIN),
    "broadcasts:add": ("GET", BROADCASTER),
    "broadcasts:audience": ("GET", BROADCASTER),
    "broadcasts:console": ("GET", LOGIN),
    "broadcasts:subscriber": ("GET", LOGIN),
    "broadcasts:detail": ("GET", LOGIN),
    "broadcasts:edit": ("GET", BROADCASTER),
    "broadcasts:export": ("GET", LOGIN),
    # Changes are POSTs (tested with their permissions in tests/test_broadcast_pages.py): a GET is refused.
    **{
        f"broadcasts:{name}": ("GET", {"anonymous": 302, **dict.fromkeys(ROLES[1:], 405)})
        for name in ("delete", "send", "test", "pause", "resume", "cancel", "label")
    },
    "subscribers:opt_out": ("GET", {"anonymous": 302, **dict.fromkeys(ROLES[1:], 405)}),
    "labels:list": ("GET", LOGIN),
    "labels:add": ("GET", MANAGE_LABELS),
    "labels:name": ("GET", MANAGE_LABELS),
    "labels:edit": ("GET", MANAGE_LABELS),
    "labels:delete": ("GET", MANAGE_LABELS),
    "labels:group_add": ("GET", MANAGE_LABELS),
    "labels:group_edit": ("GET", MANAGE_LABELS),
    "labels:group_delete": ("GET", MANAGE_LABELS),
    # Segments: every role sees and uses them; Label managers save, rename, update and delete them.
    "segments:list": ("GET", LOGIN),
    "segments:menu": ("GET", LOGIN),
    "segments:open": ("GET", LOGIN),
    "segments:count": ("GET", LOGIN),
    "segments:add": ("GET", MANAGE_LABELS),
    "segments:edit": ("GET", MANAGE_LABELS),
    "segments:delete": ("GET", MANAGE_LABELS),
    "segments:update": ("GET", {"anonymous": 302, **dict.fromkeys(ROLES[1:], 405)}),  # a POST
    "api:list_segments": ("GET", API),
    "api:openapi-json": ("GET", STAFF_ONLY),
    "api:openapi-view": ("GET", STAFF_ONLY),
    "api:put_subscriber": ("PUT", API),
    "api:batch_subscribers": ("POST", API),
    "api:get_subscriber": ("GET", API),
    "api:post_subscriber_labels": ("POST", API),
    "api:list_subscribers": ("GET", API),
    "api:list_label_changes": ("GET", API),
    "api:label_operation_members": ("GET", API),
    "api:put_opt_out": ("PUT", API),
    "api:list_labels": ("GET", API),
    "api:create_label": ("POST", API),
    "api:api-root": ("GET", {**dict.fromkeys(ROLES, 404)}),
}


def _admin_expected(name):
    """Admin pages: Django's admin checks the model permissions; non-staff are sent to the admin login."""
    not_staff = dict.fromkeys(ROLES[:4], 302)
    if name == "admin:login":
        return {**dict.fromkeys(ROLES[:4], 200), "staff": 302, "superuser": 302}
    if name == "admin:logout":
        return {**not_staff, "staff": 405, "superuser": 405}
    if name in {"admin:index", "admin:password_change", "admin:password_change_done", "admin:jsi18n"}:
        return {**not_staff, "staff": 200, "superuser": 200}
    if name == "admin:autocomplete":
        return {**not_staff, "staff": 403, "superuser": 403}  # no such field: refused, not a 500
    if name == "admin:view_on_site":
        return {**not_staff, "staff": 404, "superuser": 404}  # the content type has no page of its own
    if name == "admin:app_list":
        return {**not_staff, "staff": 404, "superuser": 200}
    if name == "admin:catch_all":
        return {**not_staff, "staff": 404, "superuser": 404}
    model_admin, view = _model_admin(name)
    superuser = 200
    if view == "add" and not model_admin.has_add_permission(_superuser_request()):
        superuser = 403
    if view == "delete" and not model_admin.has_delete_permission(_superuser_request()):
        superuser = 403
    if view == "object":  # admin/<app>/<model>/<id>/ redirects to the change page
        return {**not_staff, "staff": 302, "superuser": 302}
    if name == "admin:api_apikey_created":  # shown once, after the add: without one, back to the list
        return {**not_staff, "staff": 403, "superuser": 302}
    if view == "password_change":
        superuser = 200
    return {**not_staff, "staff": 403, "superuser": superuser}


def _model_admin(name):
    for model, model_admin in site._registry.items():
        stem = f"admin:{model._meta.app_label}_{model._meta.model_name}_"
        if name.startswith(stem):
            return model_admin, name.removeprefix(stem)
    raise AssertionError(f"{name} is not a page of a registered model: add its expected statuses to EXPECTED")


def _superuser_request():
    request = RequestFactory().get("/")
    request.user = get_user_model()(is_superuser=True, is_staff=True, is_active=True)
    return request


def _patterns(resolver=None, prefix="", namespace=""):
    """(name, route) of every URL pattern; unnamed admin patterns get a name saying what they are."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern, route, namespace + (f"{pattern.namespace}:" if pattern.namespace else ""))
        elif isinstance(pattern, URLPattern):
            name = pattern.name
            if not name and route.startswith("admin/") and route.endswith("<path:object_id>/"):
                app_label, model_name = route.split("/")[1:3]
                name = f"{app_label}_{model_name}_object"
            elif not name and route.startswith("admin/"):
                name = "catch_all"
            yield namespace + (name or route), route


class Samples:
    """The objects the object URLs point at, made once per test."""

    def __init__(self, admin):
        self.label = Label.objects.create(title="VIP", name="vip")
        self.label_group = LabelGroup.objects.create(title="Plan", name="plan", exclusive=True)
        self.subscriber = Subscriber.objects.create(channel_id=1, foreign_id="psid-1", first_name="Ada")
        add_labels(Subscriber.objects.all(), [self.label], by=admin)
        change_labels(self.subscriber, add=[Label.objects.create(title="New", name="new")], by=admin)
        access = {"user_agent": "test", "ip_address": "203.0.113.1", "username": "x", "http_accept": "*/*"}
        AccessAttempt.objects.create(**access, path_info="/", get_data="", post_data="", failures_since_start=1)
        AccessFailureLog.objects.create(**access, path_info="/")
        self.api_key, _full_key = create_api_key("Bot")
        endpoint = Endpoint.objects.create(url="https://example.com/hook", secret="s", events=Event.values)
        delivery = Delivery.objects.create(endpoint=endpoint, event=Event.SUBSCRIBER_CREATED, body="{}")
        deliver.enqueue(delivery.pk)  # a row in the database task queue
        self.admin = admin
        self.broadcast = Broadcast.objects.create(title="Sale", text="Hi", audience={"filters": {}})
        self.segment = Segment.objects.create(name="VIP", query="label=vip")
        ConsoleMessage.objects.create(subscriber=self.subscriber, broadcast=self.broadcast, text="Hi")
        stored = imports.store_file(io.BytesIO(b"channel,foreign_id\nweb,1\n"), "people.csv")
        self.subscriber_import = imports.record_upload(stored, by=admin)
        self.subscriber_import.status = SubscriberImport.Status.DONE
        self.subscriber_import.save()

    def kwargs(self, name, route):
        operation = LabelOperation.objects.order_by("pk").first()
        values = {
            "channel": "messenger",
            "foreign_id": self.subscriber.foreign_id,
            "operation_id": operation.pk if operation else 0,
            "uidb64": "MQ",
            "token": "set-password",
            "id": self.admin.pk,
            "content_type_id": "1",
        }
        if name == "broadcasts:subscriber":
            values["pk"] = self.subscriber.pk
        elif name.startswith("broadcasts:"):
            values["pk"] = self.broadcast.pk
        elif name.startswith("subscribers:import_"):
            values["pk"] = self.subscriber_import.pk
        elif name.startswith("subscribers:operation"):
            values["pk"] = operation.pk if operation else 0
        elif name.startswith("subscribers:"):
            values["pk"] = self.subscriber.pk
        elif name.startswith("labels:group_"):
            values["pk"] = self.label_group.pk
        elif name.startswith("labels:"):
            values["pk"] = self.label.pk
        elif name.startswith("segments:"):
            values["pk"] = self.segment.pk
        if "object_id" in route:
            if name == "admin:view_on_site":
                values["object_id"] = "1"
            else:
                model_admin, _view = _model_admin(name)
                sample = model_admin.model._default_manager.order_by("pk").first()
                values["object_id"] = sample.pk if sample else 0
        return values


def _url(route, kwargs):
    route = route.replace("^", "").replace("$", "")
    route = re.sub(r"\(\?P<app_label>[^)]*\)", "labels", route)
    route = re.sub(r"\(\?P<url>[^)]*\)", "nothing-here/", route)
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda match: str(kwargs[match.group(1)]), route)


@pytest.fixture
def clients(django_user_model, operator, label_manager, nobody, admin_user):
    staff = django_user_model.objects.create_user("stan", password="password", is_staff=True)
    users = {"nobody": nobody, "operator": operator, "label_manager": label_manager, "staff": staff}
    users["superuser"] = admin_user
    made = {"anonymous": Client()}
    for role, user in users.items():
        made[role] = Client()
        made[role].force_login(user)
    assert not Group.objects.get(name="Operators").user_set.filter(pk=staff.pk).exists()
    return made


def _expected(name):
    if name in EXPECTED:
        return EXPECTED[name]
    if name.startswith("admin:"):
        return "GET", _admin_expected(name)
    raise AssertionError(f"{name} has no expected statuses: add them to EXPECTED in {__name__}")


def test_every_url_answers_each_role_as_expected(clients, admin_user):
    samples = Samples(admin_user)
    wrong = []
    for name, route in _patterns():
        method, expected = _expected(name)
        url = _url(route, samples.kwargs(name, route))
        for role in ROLES:
            response = getattr(clients[role], method.lower())(url)
            if response.status_code != expected[role]:
                wrong.append(f"{method} {url} ({name}) as {role}: {response.status_code}, expected {expected[role]}")
    assert not wrong, "\n".join(wrong)
