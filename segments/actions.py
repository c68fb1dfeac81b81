"""Writes to segments: save, rename, update the filter, delete (refused while a broadcast waits on it)."""

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from segments.models import Segment

# A broadcast that still has to read its segment's filter: deleting the segment would leave it without one.
WAITING_BROADCAST_STATUSES = ("scheduled", "sending", "paused")


class SegmentInUse(Exception):
    """The segment is the audience of broadcasts that have not finished; `broadcasts` lists them."""

    def __init__(self, broadcasts):
        super().__init__(", ".join(str(broadcast) for broadcast in broadcasts))
        self.broadcasts = broadcasts


def save_segment(form, *, by) -> Segment | None:
    """Save a new or renamed segment from its valid form (segments.forms.SegmentForm).

    None when another operator took the name meanwhile (the unique constraint): the
    form then carries the error.
    """
    segment = form.instance
    if segment.pk is None:
        segment.created_by = by
    segment.updated_by, segment.updated_at = by, timezone.now()
    try:
        with transaction.atomic():
            return form.save()
    except IntegrityError:
        form.add_error("name", _("There is already a segment named “%(name)s”.") % {"name": segment.name})
        return None


def update_segment_filter(segment: Segment, query: str, *, by) -> bool:
    """Store `query` (normalised, segments.forms.clean_filter_query) as the segment's filter; False if unchanged."""
    if query == segment.query:
        return False
    segment.query, segment.updated_by, segment.updated_at = query, by, timezone.now()
    segment.save(update_fields=["query", "updated_by", "updated_at"])
    return True


def waiting_broadcasts(segment: Segment) -> list:
    """The scheduled, sending or paused broadcasts whose audience is this segment (broadcasts.Broadcast.segment)."""
    return list(segment.broadcasts.filter(status__in=WAITING_BROADCAST_STATUSES).order_by("pk"))


def delete_segment(segment: Segment) -> None:
    """Delete the segment; refused (SegmentInUse) while a broadcast that has not finished uses it.

    Drafts and finished broadcasts keep the filter they recorded and lose only the link;
    so does a draft scheduled in the instant between the check and the delete: it then
    goes out to the filter it recorded when it was saved.
    """
    waiting = waiting_broadcasts(segment)
    if waiting:
        raise SegmentInUse(waiting)
    segment.delete()
