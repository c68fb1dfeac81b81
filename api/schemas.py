"""What the API accepts and returns. Profile fields are checked by the Subscriber model's own fields
and validators, so the API accepts exactly what the admin and the app accept."""

from datetime import datetime
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from ninja import Field, Schema
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictStr,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from labels.models import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH, Color
from labels.names import normalise_title
from subscribers.models import Gender, Subscriber


def _checked_by_model(field_name: str):
    model_field = Subscriber._meta.get_field(field_name)
    choices = []

    def check_choice(value: str) -> None:
        # Field.validate() walks the choices for every value (the 250 countries, with their names): a set
        # of the allowed values, made once, answers the same with the same message, in a 500-person batch too.
        if not choices:
            choices.append(frozenset(str(code) for code, _name in model_field.flatchoices))
        if value and value not in choices[0]:
            raise ValidationError(
                model_field.error_messages["invalid_choice"], code="invalid_choice", params={"value": value}
            )
        model_field.run_validators(value)

    def check(value: str) -> str:
        try:
            ProhibitNullCharactersValidator()(value)
            if model_field.choices:
                check_choice(value)
            else:
                model_field.clean(value, None)
        except ValidationError as exc:
            raise PydanticCustomError(
                f"invalid_{field_name}", " ".join(str(message) for message in exc.messages)
            ) from None
        return value

    return AfterValidator(check)


def _messenger_locale(value):
    # Messenger reports locales as en_US; BCP 47 writes en-US.
    return value.replace("_", "-") if isinstance(value, str) else value


def _offset_as_text(value: str | float) -> str:
    # Messenger reports the time zone as a number of hours (-5.5); we store it as text ("0" for -0.0).
    return value if isinstance(value, str) else format(value + 0.0, "g")


def _text(field_name: str, **extra):
    max_length = Subscriber._meta.get_field(field_name).max_length
    return Annotated[str, Field(max_length=max_length, **extra), _checked_by_model(field_name)]


class ProfileIn(Schema):
    """The profile a channel knows. Send only what you have: omitted fields are left as they are."""

    model_config = ConfigDict(extra="forbid")

    first_name: _text("first_name") = ""
    last_name: _text("last_name") = ""
    gender: _text("gender", json_schema_extra={"enum": [*Gender.values, ""]}) = ""
    locale: Annotated[_text("locale", examples=["en-US"]), BeforeValidator(_messenger_locale)] = ""
    # Text, or a number of hours as Messenger sends it. Strict: JSON's true is no time zone (lax reads it as 1).
    timezone: Annotated[
        StrictStr | StrictFloat,
        Field(examples=["Europe/Paris", -5.5]),
        AfterValidator(_offset_as_text),
        _checked_by_model("timezone"),
    ] = ""
    country: _text("country", examples=["FR"]) = ""
    avatar_url: _text("avatar_url") = ""


class LabelRef(Schema):
    name: str
    title: str


class SubscriberOut(Schema):
    id: int
    channel: str
    foreign_id: str
    first_name: str
    last_name: str
    gender: str
    locale: str
    timezone: str
    country: str
    avatar_url: str
    created_at: datetime = Field(description="First interaction.")
    updated_at: datetime = Field(
        description="Last change of the profile (name, gender, locale, time zone, country, avatar); "
        "label changes do not move it (see `/label-changes`)."
    )
    last_seen_at: datetime | None = Field(description="Last interaction.")
    labels: list[LabelRef]


class SubscriberPage(Schema):
    items: list[SubscriberOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("null_characters", str(ProhibitNullCharactersValidator.message))
    return value


def _no_slash(value: str) -> str:
    # The API reaches a subscriber at …/subscribers/<foreign id>: an id with a slash could not be reached.
    if "/" in value:
        raise PydanticCustomError("slash", str(_("A foreign id cannot contain “/”: no API address could reach it.")))
    return value


LabelName = Annotated[str, Field(max_length=64), AfterValidator(_no_nul)]


# How many subscribers one batch request may name: about 100 KB of JSON, and one statement of 500 rows.
BATCH_LIMIT = 500


class SubscriberBatchItem(ProfileIn):
    """One person of a batch: their id on the channel and the profile the channel knows."""

    foreign_id: Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_no_nul), AfterValidator(_no_slash)]


class SubscriberBatchIn(Schema):
    model_config = ConfigDict(extra="forbid")

    channel: Annotated[str, Field(max_length=50, examples=["messenger"]), AfterValidator(_no_nul)]

    # Each item is checked on its own, so a bad one is reported without refusing the others.
    subscribers: Annotated[
        list[Any],
        WithJsonSchema({"type": "array", "maxItems": BATCH_LIMIT, "items": SubscriberBatchItem.model_json_schema()}),
    ] = Field(description=f"Up to {BATCH_LIMIT} people. A foreign id named twice: the last item wins.")


class BatchItemResult(Schema):
    index: int = Field(description="The item's position in `subscribers`, from 0.")
    foreign_id: str | None
    status: Literal["created", "updated", "unchanged", "repeated", "invalid"] = Field(
        description="`repeated`: a later item has the same foreign id and was used instead; "
        "`invalid`: see `errors`, nothing was stored for it."
    )
    id: int | None = None
    changed: list[str] = Field(default_factory=list, description="For `updated`: the fields that changed.")
    errors: list[dict] = Field(default_factory=list, description="For `invalid`: as a 422 lists them.")


class SubscriberBatchOut(Schema):
    created: int
    updated: int
    unchanged: int
    repeated: int
    invalid: int
    items: list[BatchItemResult]


class LabelChangeIn(Schema):
    model_config = ConfigDict(extra="forbid")

    add: list[LabelName] = Field(default_factory=list, max_length=100)
    remove: list[LabelName] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _neither_added_and_removed(self):
        if both := sorted(set(self.add) & set(self.remove)):
            message = ngettext(
                "%(names)s is both in add and in remove: ask for one or the other.",
                "%(names)s are both in add and in remove: ask for one or the other.",
                len(both),
            ) % {"names": ", ".join(both)}
            raise PydanticCustomError("added_and_removed", message)
        return self


class LabelIn(Schema):
    model_config = ConfigDict(extra="forbid")

    # Normalised as the model stores it (labels.names.normalise_title); the limits are the model's.
    title: Annotated[str, Field(max_length=TITLE_MAX_LENGTH), AfterValidator(_no_nul), AfterValidator(normalise_title)]
    name: str = Field("", max_length=64, description="Generated from the title when blank.")
    description: str = Field("", max_length=DESCRIPTION_MAX_LENGTH)
    color: str = Field("", json_schema_extra={"enum": [*Color.values, ""]})


class LabelOut(Schema):
    id: int
    name: str
    title: str
    description: str
    color: str


class Error(Schema):
    detail: str


class UnknownLabels(Schema):
    detail: str
    unknown: list[str]


class FieldErrors(Schema):
    detail: list[dict]


class SubscriberRef(Schema):
    id: int
    channel: str
    foreign_id: str


class LabelChangeEntry(Schema):
    type: str = Field(description="`change`: one label on one subscriber; `operation`: a bulk change.")
    id: int
    at: datetime = Field(description="When the change was made, or when the bulk operation finished.")
    action: str = Field(description="`added` or `removed`.")
    source: str
    labels: list[str] = Field(description="Names of the labels, as they were then.")
    subscriber: SubscriberRef | None = Field(None, description="For a single change.")
    subscribers_changed: int | None = Field(None, description="For a bulk operation.")
    members_url: str | None = Field(None, description="For a bulk operation: page through who it changed.")


class LabelChangePage(Schema):
    items: list[LabelChangeEntry]
    next_cursor: str | None = Field(description="Pass as `after` to read on; keep the last one to poll later.")


class OperationMember(Schema):
    subscriber: SubscriberRef
    label: str


class OperationMemberPage(Schema):
    items: list[OperationMember]
    next_cursor: str | None = Field(description="Pass as `after` to get the next page; null on the last page.")


class OptOutIn(Schema):
    model_config = ConfigDict(extra="forbid")

    # Strict: "yes", "off" or 1 are no answer to "did they say STOP?" (lax pydantic reads them as booleans).
    opted_out: StrictBool = Field(description="true when the person said STOP; false when they ask for messages again.")


class OptOutOut(Schema):
    opted_out: bool
    opted_out_at: datetime | None = Field(description="Since when the person receives no promotional message.")


class SegmentOut(Schema):
    """A saved segment: the Subscribers page's filter under a name, evaluated when used."""

    id: int
    name: str
    description: str
    filter: str = Field(alias="query")
    created_at: datetime
    updated_at: datetime
