from django.contrib import admin, messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from api.actions import revoke_api_keys
from api.models import ApiKey


@admin.action(description=_("Revoke the selected API keys"))
def revoke_selected(modeladmin, request, queryset):
    count = revoke_api_keys(queryset)
    text = ngettext("%(count)s API key revoked.", "%(count)s API keys revoked.", count) % {"count": intcomma(count)}
    modeladmin.message_user(request, text, messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "masked_key", "channel_names", "rate_limit_per_minute", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "channels"]
    search_fields = ["name", "=prefix"]
    filter_horizontal = ["channels"]
    readonly_fields = ["masked_key", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = [revoke_selected]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("channels")

    def get_fields(self, request, obj=None):
        editable = ["name", "channels", "rate_limit_per_minute"]
        return editable if obj is None else [*editable, *self.readonly_fields]

    @admin.display(description=_("key"))
    def masked_key(self, key):
        return f"hxs_{key.prefix}_…"

    @admin.display(description=_("channels"))
    def channel_names(self, key):
        return ", ".join(channel.title for channel in key.channels.all()) or _("All channels")

    def save_model(self, request, obj, form, change):
        if not change:
            # Kept on the request only, to show it once on the next page.
            request._new_api_key = obj.set_new_secret()
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        return TemplateResponse(
            request,
            "admin/api/apikey/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("API key created"),
                "api_key": obj,
                "full_key": request._new_api_key,
            },
        )
