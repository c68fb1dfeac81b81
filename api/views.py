"""The bot-runtime API under /api/v1/: subscribers in, profiles and labels out, labels set."""

from datetime import UTC, datetime
from typing import Literal

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from ninja import NinjaAPI, Query, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.openapi.docs import Swagger
from pydantic import ValidationError as PydanticValidationError

from api import queries
from api.auth import ApiKeyAuth, PerKeyRateLimit, permitted_channel, permitted_channels
from api.docs import staff_or_api_key
from api.errors import BodyTooLarge, InvalidInput, UnknownLabelNames, UnknownSegmentName
from api.schemas import (
    BATCH_LIMIT,
    Error,
    FieldErrors,
    LabelChangeIn,
    LabelChangePage,
    LabelIn,
    LabelOut,
    OperationMemberPage,
    OptOutIn,
    OptOutOut,
    ProfileIn,
    SegmentOut,
    SubscriberBatchIn,
    SubscriberBatchItem,
    SubscriberBatchOut,
    SubscriberOut,
    SubscriberPage,
    UnknownLabels,
)
from labels.actions import create_label as save_new_label
from labels.exclusive import clash_message
from labels.forms import LabelForm
from labels.models import Label
from segments.models import Segment
from segments.queries import segment_subscribers
from subscribers import actions as subscriber_actions
from subscribers.actions import PROFILE_FIELDS
from subscribers.filters import SubscriberFilter
from subscribers.models import LabelOperation, LabelSource, Subscriber
from subscribers.queries import label_change_feed, operation_members


class LocalSwagger(Swagger):
    """Swagger UI from our own static files, its scripts carrying the CSP nonce."""

    template = "api/docs.html"


api = NinjaAPI(
    title="Hexasubs bot API",
    version="1",
    description=gettext_lazy(
        "For the bot runtime: send `Authorization: Bearer <API key>`. Keys are created by staff in the "
        "administration. Too many requests get 429 with Retry-After."
    ),
    auth=ApiKeyAuth(),
    throttle=[PerKeyRateLimit()],
    docs=LocalSwagger(),
    docs_decorator=staff_or_api_key,
    urls_namespace="api",
)

COMMON = {401: Error, 413: Error, 429: Error}
# A batch of BATCH_LIMIT people with long avatar URLs fits; a single call keeps api.auth.MAX_BODY_BYTES.
BATCH_BODY_BYTES = 1024 * 1024
ON_CHANNEL = {**COMMON, 403: Error, 404: Error, 422: FieldErrors}


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc):
    response = api.create_response(request, {"detail": _("Missing, wrong or revoked API key.")}, status=401)
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(BodyTooLarge)
def _too_large(request, exc):
    message = _("The request body is larger than %(size)d KB.") % {"size": exc.limit_bytes // 1024}
    return api.create_response(request, {"detail": message}, status=413)


@api.exception_handler(HttpError)
def _http_error(request, exc):
    if exc.status_code == 400:
        # Our views never raise 400 themselves: this is django-ninja failing to parse the body.
        error = {"loc": ["body"], "msg": _("The request body is not valid JSON."), "type": "json_invalid"}
        return api.create_response(request, {"detail": [error]}, status=422)
    return api.create_response(request, {"detail": exc.message}, status=exc.status_code)


@api.exception_handler(InvalidInput)
def _invalid_input(request, exc):
    return api.create_response(
        request, {"detail": [{"loc": exc.loc, "msg": str(exc.message), "type": "invalid"}]}, status=422
    )


@api.exception_handler(Http404)
def _not_found(request, exc):
    return api.create_response(request, {"detail": str(exc) or _("Not found.")}, status=404)


def _subscriber_out(subscriber: Subscriber) -> dict:
    return {
        **{name: str(getattr(subscriber, name)) for name in PROFILE_FIELDS},
        "id": subscriber.pk,
        "channel": subscriber.channel.name,
        "foreign_id": subscriber.foreign_id,
        "created_at": subscriber.created_at,
        "updated_at": subscriber.updated_at,
        "last_seen_at": subscriber.last_seen_at,
        "labels": [{"name": label.name, "title": label.title} for label in subscriber.labels.all()],
    }


def _labels_named(names: list[str]) -> list[Label]:
    """The labels called `names`; 400 naming the unknown ones if any."""
    wanted = set(names)
    labels = list(Label.objects.filter(name__in=wanted))
    unknown = sorted(wanted - {label.name for label in labels})
    if unknown:
        raise UnknownLabelNames(unknown)
    return labels


@api.exception_handler(UnknownLabelNames)
def _unknown_labels(request, exc):
    message = ngettext("No label is called %(names)s.", "No labels are called %(names)s.", len(exc.names)) % {
        "names": ", ".join(exc.names)
    }
    return api.create_response(request, {"detail": message, "unknown": exc.names}, status=400)


@api.exception_handler(subscriber_actions.ExclusiveClash)
def _exclusive_clash(request, exc):
    """Two labels of one exclusive group asked for at once (labels.LabelGroup.exclusive): nothing changed."""
    clashing = [[label.name for label in same] for same in exc.labels]
    return api.create_response(request, {"detail": clash_message(clashing), "exclusive": clashing}, status=400)


@api.put(
    "/channels/{channel}/subscribers/{foreign_id}",
    tags=["Subscribers"],
    response={200: SubscriberOut, 201: SubscriberOut, **ON_CHANNEL},
    summary=gettext_lazy("Record an interaction"),
    description=gettext_lazy(
        "Creates the subscriber on first contact (201), otherwise updates the fields that changed (200)."
    ),
)
def put_subscriber(request, channel: str, foreign_id: str, profile: ProfileIn):
    channel_obj = permitted_channel(request.auth, channel)
    _check_foreign_id(foreign_id)
    subscriber, created, _changed = subscriber_actions.upsert_subscriber(
        channel_obj, foreign_id, profile.model_dump(exclude_unset=True)
    )
    return Status(201 if created else 200, _subscriber_out(subscriber))


def _check_foreign_id(foreign_id):
    if len(foreign_id) > Subscriber._meta.get_field("foreign_id").max_length:
        raise InvalidInput(["path", "foreign_id"], _("The foreign id is longer than 255 characters."))


@api.post(
    "/subscribers/batch",
    auth=ApiKeyAuth(max_body_bytes=BATCH_BODY_BYTES),
    tags=["Subscribers"],
    response={200: SubscriberBatchOut, 400: Error, **ON_CHANNEL},
    url_name="batch_subscribers",
    summary=gettext_lazy("Record many people at once"),
    description=gettext_lazy(
        "For channels that sync in bulk: up to 500 people of one channel per request, each created or updated "
        "as a single PUT would (webhook events included), set-based: two statements for the whole batch. Each "
        "item is checked on its own: "
        "the invalid ones are reported in `items` and the others stored. More than 500 items: 400, nothing "
        "stored. A foreign id named twice: the last item wins, the earlier ones are `repeated`. "
        "Counts as one request for the rate limit; the body may be up to 1 MB."
    ),
)
def batch_subscribers(request, batch: SubscriberBatchIn):
    channel_obj = permitted_channel(request.auth, batch.channel)
    if len(batch.subscribers) > BATCH_LIMIT:
        message = ngettext(
            "At most %(limit)s subscriber per request: send the others in another.",
            "At most %(limit)s subscribers per request: send the others in another.",
            BATCH_LIMIT,
        )
        return Status(400, {"detail": message % {"limit": BATCH_LIMIT}})
    items, valid = [], []
    for index, item in enumerate(batch.subscribers):
        foreign_id = item.get("foreign_id") if isinstance(item, dict) else None
        items.append({"index": index, "foreign_id": foreign_id if isinstance(foreign_id, str) else None})
        try:
            person = SubscriberBatchItem.model_validate(item)
        except PydanticValidationError as exc:
            items[index]["status"] = "invalid"
            items[index]["errors"] = [
                {
                    "loc": ["body", "batch", "subscribers", index, *error["loc"]],
                    "msg": error["msg"],
                    "type": error["type"],
                }
                for error in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
            continue
        valid.append((index, person.foreign_id, person.model_dump(exclude_unset=True, exclude={"foreign_id"})))
    last = {foreign_id: index for index, foreign_id, _profile in valid}
    saved = subscriber_actions.upsert_subscribers(
        channel_obj, [(foreign_id, profile) for index, foreign_id, profile in valid if last[foreign_id] == index]
    )
    found = {subscriber.foreign_id: (subscriber, created, changed) for subscriber, created, changed in saved}
    for index, foreign_id, _profile in valid:
        subscriber, created, changed = found[foreign_id]
        status = (
            "repeated" if last[foreign_id] != index else "created" if created else "updated" if changed else "unchanged"
        )
        items[index].update(status=status, id=subscriber.pk, changed=changed if status == "updated" else [])
    totals = dict.fromkeys(["created", "updated", "unchanged", "repeated", "invalid"], 0)
    for item in items:
        totals[item["status"]] += 1
    return {**totals, "items": items}


@api.get(
    "/channels/{channel}/subscribers/{foreign_id}",
    tags=["Subscribers"],
    response={200: SubscriberOut, **ON_CHANNEL},
    summary=gettext_lazy("A subscriber's profile and labels"),
)
def get_subscriber(request, channel: str, foreign_id: str):
    channel_obj = permitted_channel(request.auth, channel)
    subscribers = queries.with_labels(Subscriber.objects.filter(channel=channel_obj))
    return _subscriber_out(get_object_or_404(subscribers, foreign_id=foreign_id))


@api.post(
    "/channels/{channel}/subscribers/{foreign_id}/labels",
    tags=["Subscribers"],
    response={200: SubscriberOut, 400: UnknownLabels, **ON_CHANNEL},
    summary=gettext_lazy("Add and remove labels"),
    description=gettext_lazy(
        "Unknown label names give 400 listing them, and nothing is changed; so do two labels of one exclusive "
        "group in `add`. A label of an exclusive group takes the group's other labels away."
    ),
)
def post_subscriber_labels(request, channel: str, foreign_id: str, change: LabelChangeIn):
    channel_obj = permitted_channel(request.auth, channel)
    subscriber = get_object_or_404(Subscriber, channel=channel_obj, foreign_id=foreign_id)
    labels = {label.name: label for label in _labels_named([*change.add, *change.remove])}
    subscriber_actions.change_labels(
        subscriber,
        add=[labels[name] for name in change.add],
        remove=[labels[name] for name in change.remove],
        source=LabelSource.API,
    )
    return _subscriber_out(queries.with_labels(Subscriber.objects).get(pk=subscriber.pk))


@api.put(
    "/channels/{channel}/subscribers/{foreign_id}/opt-out",
    tags=["Subscribers"],
    response={200: OptOutOut, **ON_CHANNEL},
    summary=gettext_lazy("Opt out of promotional messages, or back in"),
    description=gettext_lazy(
        'Send `{"opted_out": true}` when the person says STOP: broadcasts never send them promotional messages '
        "again, from the next message on. `false` opts them back in. Not a profile change: `updated_at` stays."
    ),
)
def put_opt_out(request, channel: str, foreign_id: str, body: OptOutIn):
    channel_obj = permitted_channel(request.auth, channel)
    subscriber = get_object_or_404(Subscriber, channel=channel_obj, foreign_id=foreign_id)
    subscriber_actions.set_opt_out(subscriber, body.opted_out)
    return {"opted_out": subscriber.opted_out_at is not None, "opted_out_at": subscriber.opted_out_at}


@api.get(
    "/subscribers",
    tags=["Subscribers"],
    response={200: SubscriberPage, 400: UnknownLabels, **ON_CHANNEL},
    summary=gettext_lazy("Subscribers, filtered like the Subscribers page"),
    description=gettext_lazy(
        "The Subscribers page's own filters. Filtered by labels, ordered by id; otherwise by (updated_at, id), "
        "`updated_at` being the profile's date (label changes do not move it: read `/label-changes`). "
        "Follow `next_cursor` with the same filters. `segment` names a saved segment (any case): its stored "
        "filter applies, and the other parameters narrow it further; an unknown name gives 400 naming it."
    ),
)
def list_subscribers(
    request,
    label: Query[list[str]] = None,
    segment: str = "",
    mode: Literal["any", "all", "none"] = "any",
    channel: str = "",
    locale: str = "",
    q: str = "",
    updated_since: datetime | None = None,
    cursor: str = "",
    limit: int = Query(50, ge=1, le=200),
):
    if updated_since is not None and updated_since.tzinfo is None:
        raise InvalidInput(["query", "updated_since"], _("Give a time zone, such as 2026-01-31T12:00:00Z."))
    try:
        updated_since = updated_since and updated_since.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(["query", "updated_since"], _("This time is outside the calendar once in UTC.")) from None
    if channel:
        permitted_channel(request.auth, channel)
    label = [name for name in label or () if name]  # `label=` filters on nothing, as `channel=` does
    if label:
        _labels_named(label)
    saved = _segment_named(segment) if segment else None
    by_id = bool(label) or bool(saved and saved.params().getlist("label"))
    try:
        after = queries.id_after(cursor) if cursor and by_id else None
    except queries.BadCursor as exc:
        raise InvalidInput(["query", "cursor"], str(exc)) from None
    visible = Subscriber.objects.filter(permitted_channels(request.auth))
    if saved is not None:
        try:
            visible = segment_subscribers(saved, visible, ids_after=after)
        except ValueError as exc:
            raise InvalidInput(["query", "segment"], str(exc)) from None
    params = {"label": label or [], "label_mode": [mode], "channel": [channel], "locale": [locale], "q": [q]}
    filters = SubscriberFilter(
        MultiValueDict({name: values for name, values in params.items() if any(values)}),
        queryset=visible,
        ids_after=after,
    )
    if not filters.is_valid():
        raise InvalidInput(["query"], " ".join(filters.problems()))
    subscribers = filters.qs
    if updated_since is not None:
        subscribers = subscribers.filter(updated_at__gte=updated_since)
    if cursor and not by_id:
        try:
            subscribers = queries.after_cursor(subscribers, cursor)
        except queries.BadCursor as exc:
            raise InvalidInput(["query", "cursor"], str(exc)) from None
    ordered = subscribers.order_by("pk") if by_id else subscribers.order_by("updated_at", "pk")
    page = list(queries.with_labels(ordered)[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return {
        "items": [_subscriber_out(subscriber) for subscriber in page],
        "next_cursor": queries.encode_cursor(page[-1], by_id=by_id) if more else None,
    }


@api.get(
    "/label-changes",
    tags=["Label changes"],
    response={200: LabelChangePage, 422: FieldErrors, **COMMON},
    summary=gettext_lazy("Label changes, oldest first"),
    description=gettext_lazy(
        "Every label added to or removed from a subscriber: single changes one by one, bulk changes as one "
        "entry each with a link to who they changed. Keep the last `next_cursor` and poll with it as `after`. "
        "Entries appear a few seconds after they are made, once every transaction before them has committed."
    ),
)
def list_label_changes(request, after: str = "", limit: int = Query(100, ge=1, le=500)):
    try:
        entries, next_cursor = label_change_feed(after, limit, visible=permitted_channels(request.auth))
    except ValueError:
        raise InvalidInput(["query", "after"], _("The cursor is not one this API returned.")) from None
    return {"items": [_change_entry(entry) for entry in entries], "next_cursor": next_cursor}


def _change_entry(entry) -> dict:
    item = entry.item
    if entry.kind == "change":
        return {
            "type": "change",
            "id": item.pk,
            "at": entry.at,
            "action": item.action,
            "source": item.source,
            "labels": [item.label_name],
            "subscriber": {
                "id": item.subscriber_id,
                "channel": item.subscriber.channel.name,
                "foreign_id": item.subscriber.foreign_id,
            },
        }
    return {
        "type": "operation",
        "id": item.pk,
        "at": entry.at,
        "action": "added" if item.kind == LabelOperation.Kind.ADD else "removed",
        "source": item.source,
        "labels": item.label_names,
        "subscribers_changed": item.changed_subscribers,
        "members_url": reverse("api:label_operation_members", args=[item.pk]),
    }


@api.get(
    "/label-operations/{operation_id}/members",
    tags=["Bulk changes"],
    response={200: OperationMemberPage, 422: FieldErrors, **ON_CHANNEL},
    url_name="label_operation_members",
    summary=gettext_lazy("Who a bulk label change changed"),
    description=gettext_lazy("Each subscriber and label the operation added or removed, by subscriber id."),
)
def list_operation_members(request, operation_id: int, after: str = "", limit: int = Query(500, ge=1, le=5000)):
    operation = get_object_or_404(LabelOperation, pk=operation_id)
    try:
        members = list(operation_members(operation, after, limit + 1, visible=permitted_channels(request.auth)))
    except ValueError:
        raise InvalidInput(["query", "after"], _("The cursor is not one this API returned.")) from None
    more = len(members) > limit
    members = members[:limit]
    return {
        "items": [
            {
                "subscriber": {"id": subscriber_id, "channel": channel, "foreign_id": foreign_id},
                "label": label_name,
            }
            for subscriber_id, label_id, channel, foreign_id, label_name in members
        ],
        "next_cursor": f"{members[-1][0]}.{members[-1][1]}" if more else None,
    }


def _segment_named(name: str) -> Segment:
    segment = Segment.objects.filter(name__iexact=name.strip()).first()
    if segment is None:
        raise UnknownSegmentName(name)
    return segment


@api.exception_handler(UnknownSegmentName)
def _unknown_segment(request, exc):
    message = _("There is no segment named “%(name)s”.") % {"name": exc.name}
    return api.create_response(request, {"detail": message, "unknown": [exc.name]}, status=400)


@api.get(
    "/segments",
    tags=["Segments"],
    response={200: list[SegmentOut], **COMMON},
    summary=gettext_lazy("Every saved segment"),
    description=gettext_lazy(
        "The segments saved on the Subscribers page, by name. `filter` is the page's query string; "
        "`/subscribers?segment=NAME` lists who is in one now."
    ),
)
def list_segments(request):
    return list(Segment.objects.all())  # by name, any case (Segment.Meta.ordering)


@api.get("/labels", tags=["Labels"], response={200: list[LabelOut], **COMMON}, summary=gettext_lazy("Every label"))
def list_labels(request):
    return list(Label.objects.order_by("name"))


@api.post(
    "/labels",
    tags=["Labels"],
    response={201: LabelOut, 422: FieldErrors, **COMMON},
    summary=gettext_lazy("Create a label"),
    description=gettext_lazy(
        "Checked like the app's label dialog: unique title and name; a blank name is made from the title."
    ),
)
def create_label(request, data: LabelIn):
    form = LabelForm(data=data.model_dump())
    if not form.is_valid():
        errors = [
            {"loc": ["body", "data", field], "msg": " ".join(messages), "type": "invalid"}
            for field, messages in form.errors.items()
        ]
        return Status(422, {"detail": errors})
    label = save_new_label(form)
    if label is None:
        errors = [
            {"loc": ["body", "data", field], "msg": " ".join(messages), "type": "conflict"}
            for field, messages in form.errors.items()
        ]
        return Status(422, {"detail": errors})
    return Status(201, label)
