import django_filters
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from broadcasts.models import Broadcast, Delivery, DeliveryReason, DeliveryStatus
from subscribers.filters import search_by_name
from subscribers.models import Subscriber


class BroadcastFilter(django_filters.FilterSet):
    """The Broadcasts page's filters: a word of the title, a status."""

    q = django_filters.CharFilter(method="search", label=_("Search"))
    status = django_filters.ChoiceFilter(
        choices=Broadcast.Status.choices, label=_("Status"), empty_label=_("Any status")
    )

    class Meta:
        model = Broadcast
        fields = []

    def search(self, queryset, name, value):
        return queryset.filter(title__icontains=value.strip()) if value.strip() else queryset


class DeliveryFilter(django_filters.FilterSet):
    """The report's recipient list: by status, by reason, by name or foreign id."""

    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices, label=_("Status"), empty_label=_("Any status"))
    reason = django_filters.ChoiceFilter(
        choices=[choice for choice in DeliveryReason.choices if choice[0]],
        label=_("Reason"),
        empty_label=_("Any reason"),
    )
    q = django_filters.CharFilter(method="search", label=_("Name or foreign id"))

    class Meta:
        model = Delivery
        fields = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.form.fields.values():
            field.widget.attrs["class"] = (
                "form-select form-select-sm" if hasattr(field, "choices") else ("form-control form-control-sm")
            )

    def search(self, queryset, name, value):
        if not value.strip():
            return queryset
        people = search_by_name(Subscriber.objects.all(), value)
        return queryset.filter(Q(subscriber__in=people.values("pk")))
