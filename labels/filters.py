import django_filters
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from labels.models import Label


class LabelFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label=_("Search"))
    group = django_filters.CharFilter(method="in_group", label=_("Group"))

    class Meta:
        model = Label
        fields = []

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(title__icontains=value) | Q(name__icontains=value))

    def in_group(self, queryset, name, value):
        """`group=NAME` keeps that group's labels; `group=-` those in no group."""
        if value == "-":
            return queryset.filter(group__isnull=True)
        return queryset.filter(group__name=value) if value else queryset
