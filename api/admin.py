from django.contrib import admin, messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from api.actions import revoke_api_keys
from api.models import ApiKey

# The new key, from the POST that made it to the one page that shows it (Post/Redirect/Get).
NEW_KEY_SESSION = "admin:new_api_key"


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

    def get_urls(self):
        created = path(
            "<path:object_id>/created/", self.admin_site.admin_view(self.created_view), name="api_apikey_created"
        )
        return [created, *super().get_urls()]

    def response_add(self, request, obj, post_url_continue=None):
        # A redirect: reloading the page that shows the key must not post the form again and make another key.
        request.session[NEW_KEY_SESSION] = {"pk": obj.pk, "key": request._new_api_key}
        return redirect("admin:api_apikey_created", obj.pk)

    def created_view(self, request, object_id):
        """The new key, shown once: the session hands it over and forgets it; a reload finds it gone."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        api_key = get_object_or_404(ApiKey, pk=object_id)
        shown = request.session.pop(NEW_KEY_SESSION, None)
        if not shown or shown["pk"] != api_key.pk:
            message = _(
                "A key is shown once, right after it is created. If it was not copied, revoke it and add another."
            )
            self.message_user(request, message, messages.WARNING)
            return redirect("admin:api_apikey_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("API key created"),
            "api_key": api_key,
            "full_key": shown["key"],
        }
        return TemplateResponse(request, "admin/api/apikey/created.html", context)
