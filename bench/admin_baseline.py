"""The two baselines: the admin changelist a Django developer writes first, and the same admin tuned.

Each is registered on its own AdminSite, mounted only by the benchmark's URLs (`bench.urls`), so the
project's real admin is not what we compare to.

- `site` (/baseline-admin/): nothing tuned. One labels query per row, a full COUNT(*) of the filtered
  rows and another of the whole table, the label filter as a JOIN, sorting by the channel through its
  model's ordering (a join and a sort by title), `search_fields` on the two name columns.
- `tuned_site` (/tuned-admin/): what a developer who knows the admin does next, with the same indexes and
  the same search as our page: `list_select_related`, labels prefetched in one query, no full-table
  count (`show_full_result_count = False`), a tie-breaker in the direction of the indexes, the channel
  sorted by its id (as our column is), the label filter as `EXISTS` (as ours), our search expression
  (`subscribers.filters.search_by_name`: the folded name and its trigram index), and the Labels page
  reading the kept per-label counts instead of counting three million assignments. It still counts the
  filtered rows exactly (the admin's paginator), where our page stops counting at 10,000 and estimates.
"""

from django.contrib import admin
from django.db.models import Count, Exists, OuterRef

from labels.models import Label
from labels.queries import with_subscriber_count
from subscribers.filters import search_by_name
from subscribers.models import Subscriber, SubscriberLabel
from subscribers.queries import subscribers_for_table

site = admin.AdminSite(name="baseline")
tuned_site = admin.AdminSite(name="tuned")


# --- the plain admin ---------------------------------------------------------------------------------


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


# --- the tuned admin ---------------------------------------------------------------------------------


class CarriesLabelFilter(admin.SimpleListFilter):
    """Subscribers carrying any of the chosen labels (`?label=1,2,3`), as an `EXISTS` like our page's filter."""

    title = "labels"
    parameter_name = "label"

    def lookups(self, request, model_admin):
        return list(Label.objects.order_by("title", "pk").values_list("pk", "title"))

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        ids = [int(part) for part in self.value().split(",") if part.strip().isdigit()]
        return queryset.filter(Exists(SubscriberLabel.objects.filter(subscriber_id=OuterRef("pk"), label_id__in=ids)))


@admin.register(Subscriber, site=tuned_site)
class TunedSubscriberAdmin(admin.ModelAdmin):
    inlines = [LabelInline]
    list_display = [
        "first_name",
        "last_name",
        "channel_title",
        "gender",
        "locale",
        "label_titles",
        "created_at",
        "updated_at",
    ]
    list_filter = [CarriesLabelFilter, "channel"]
    list_select_related = ["channel"]
    # Searched by get_search_results (our expression); the admin shows the box only when this is set.
    search_fields = ["search_name"]
    show_full_result_count = False
    list_per_page = 25

    def get_queryset(self, request):
        # Labels prefetched in one query, ordered as our table shows them; the ascending id makes every
        # sort totally ordered in the direction of the (column, id) indexes, where the admin would add "-pk".
        return subscribers_for_table().order_by("pk")

    def get_search_results(self, request, queryset, search_term):
        return search_by_name(queryset, search_term), False

    @admin.display(description="channel", ordering="channel_id")
    def channel_title(self, subscriber):
        return subscriber.channel.title

    @admin.display(description="labels")
    def label_titles(self, subscriber):
        return ", ".join(label.title for label in subscriber.labels.all())


@admin.register(Label, site=tuned_site)
class TunedLabelAdmin(admin.ModelAdmin):
    list_display = ["title", "name", "description", "subscriber_count", "created_at", "updated_at"]
    search_fields = ["title", "name"]
    show_full_result_count = False
    list_per_page = 50

    def get_queryset(self, request):
        return with_subscriber_count(super().get_queryset(request))

    @admin.display(description="subscribers", ordering="subscriber_count")
    def subscriber_count(self, label):
        return label.subscriber_count
