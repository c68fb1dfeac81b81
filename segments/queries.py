"""Reads for segments: who a segment selects, and its filter in words."""

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from labels.models import Label
from segments.models import Segment
from subscribers.filters import SubscriberFilter
from subscribers.models import Channel, Subscriber


def segment_filter(segment: Segment, *, queryset: QuerySet | None = None, **kwargs) -> SubscriberFilter:
    """The Subscribers page's filter object reading the segment's stored filter."""
    return SubscriberFilter(
        segment.params(), queryset=Subscriber.objects.all() if queryset is None else queryset, **kwargs
    )


def segment_subscribers(segment: Segment, queryset: QuerySet | None = None, **kwargs) -> QuerySet:
    """The subscribers the segment selects now. Raises ValueError when its filter no longer applies."""
    filterset = segment_filter(segment, queryset=queryset, **kwargs)
    if not filterset.is_valid():
        raise ValueError(
            _("Segment “%(name)s”: %(problems)s") % {"name": segment.name, "problems": "; ".join(filterset.problems())}
        )
    return filterset.qs


def _pair(name, value) -> str:
    """ "Channel: Web site", with the colon as each language writes it."""
    return _("%(filter)s: %(value)s") % {"filter": name, "value": value}


DESCRIBED = {
    "q",
    "channel",
    "gender",
    "locale",
    "label",
    "label_mode",
    "no_labels",
    "created_after",
    "created_before",
    "updated_after",
    "updated_before",
}


def describe(segments: list[Segment]) -> dict[int, list[str]]:
    """Each segment's filter in words, by segment id ("Channel: Web site", "Any of these labels: VIP, News").

    Two queries for any number of segments: the labels and the channels they name,
    shown by title (a deleted label by its name, marked as such).
    """
    params = {segment.pk: segment.params() for segment in segments}
    label_names = {name for p in params.values() for name in p.getlist("label")}
    channel_names = {name for p in params.values() for name in p.getlist("channel")}
    labels = dict(Label.objects.filter(name__in=label_names).values_list("name", "title")) if label_names else {}
    channels = {c.name: str(c) for c in Channel.objects.filter(name__in=channel_names)} if channel_names else {}
    fields = SubscriberFilter.base_filters
    genders = dict(fields["gender"].extra["choices"])
    modes = dict(fields["label_mode"].extra["choices"])
    described = {}
    for pk, p in params.items():
        words = []
        if p.get("q"):
            words.append(_pair(fields["q"].label, _("“%(text)s”") % {"text": p["q"]}))
        if p.getlist("channel"):
            words.append(_pair(fields["channel"].label, ", ".join(channels.get(n, n) for n in p.getlist("channel"))))
        if p.get("gender"):
            words.append(_pair(fields["gender"].label, genders.get(p["gender"], p["gender"])))
        if p.get("locale"):
            words.append(_pair(fields["locale"].label, p["locale"]))
        if p.getlist("label"):
            titles = [labels.get(n) or _("%(name)s (deleted)") % {"name": n} for n in p.getlist("label")]
            words.append(_pair(modes.get(p.get("label_mode") or "any", modes["any"]), ", ".join(titles)))
        if p.get("no_labels"):
            words.append(str(fields["no_labels"].label))
        for name in ("created_after", "created_before", "updated_after", "updated_before"):
            if p.get(name):
                words.append(_pair(fields[name].label, p[name]))
        for name in [name for name in fields if name not in DESCRIBED]:  # filters added later: label and values
            if p.getlist(name):
                words.append(_pair(fields[name].label, ", ".join(p.getlist(name))))
        described[pk] = words or [_("All subscribers")]
    return described
