"""The baseline: the admin changelist a Django developer would build first.

Registered on its own AdminSite, mounted only by the benchmark's URLs (`bench.urls`),
so the project's real admin (with its tuned changelist) is not what we compare to.
Nothing here is tuned: no prefetching, full result counts, the default paging.
"""

from django.contrib import admin
from django.db.models import Count

from labels.models import Label
from subscribers.models import Subscriber, SubscriberLabel

site = admin.AdminSite(name="baseline")


class LabelInline(admin.TabularInline):
    # Labels go through a model with extra fields, so the change form shows them as an inline.
    model = SubscriberLabel
    fields = ["label", "assigned_at"]
    extra = 0


@admin.register(Subscriber, site=site)
class SubscriberAdmin(admin.ModelAdmin):
    inlines = [LabelInline]
    list_display = [
        "first_name",
        "last_name",
        "channel",
        "gender",
        "locale",
        "label_titles",
        "created_at",
        "updated_at",
    ]
    list_filter = ["labels", "channel"]
    search_fields = ["first_name", "last_name"]
    # The same page size as our table, so both do the same work per page.
    list_per_page = 25

    @admin.display(description="labels")
    def label_titles(self, subscriber):
        return ", ".join(label.title for label in subscriber.labels.all())


@admin.register(Label, site=site)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["title", "name", "description", "subscriber_count", "created_at", "updated_at"]
    search_fields = ["title", "name"]
    list_per_page = 50

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(subscriber_count=Count("subscribers"))

    @admin.display(description="subscribers", ordering="subscriber_count")
    def subscriber_count(self, label):
        return label.subscriber_count
