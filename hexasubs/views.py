from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView, PasswordResetView
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.translation import gettext as _

from hexasubs.dialogs import in_dialog
from hexasubs.management.commands.prepare_demo import DEMO_PASSWORD, DEMO_USERNAME


def home(request):
    return redirect("subscribers:list")


class DemoLoginView(LoginView):
    """The login page; in development it says how to log in as the demo user that `make run` created."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["password_reset_available"] = settings.EMAIL_CONFIGURED
        if settings.DEBUG:
            demo = get_user_model().objects.filter(username=DEMO_USERNAME, is_active=True).first()
            if demo and demo.check_password(DEMO_PASSWORD):
                context["demo_login"] = {"username": DEMO_USERNAME, "password": DEMO_PASSWORD}
        return context


login = DemoLoginView.as_view()


@login_not_required
def favicon(request):
    """Pages name their icon; the admin's pages and browsers asking on their own find it here, not a 404.

    The file's address is looked up per request: production's manifest exists only after collectstatic.
    """
    return redirect(static("img/favicon.svg"), permanent=True)


@login_not_required
def password_reset(request):
    """Django's password reset, or where no e-mail is configured a page that says whom to ask.

    Without e-mail the reset mail would be dropped while the page said it was sent.
    """
    if not settings.EMAIL_CONFIGURED:
        return render(request, "registration/password_reset_unavailable.html")
    return PasswordResetView.as_view()(request)


def permission_denied(request, exception):
    return _error(request, "403.html", _("Access denied"), 403)


def page_not_found(request, exception):
    return _error(request, "404.html", _("Page not found"), 404)


def _error(request, page, title, status):
    """A whole page, or for htmx a dialog that explains it: a table or a row must not turn into an error page."""
    if not request.htmx or request.htmx.history_restore_request:
        return render(request, page, status=status)
    context = {"content": f"{page}#message", "dialog_title": title}
    if in_dialog(request):
        return render(request, context["content"], context, status=status)
    response = render(request, "dialog.html#modal", context, status=status)
    response["HX-Retarget"] = "#modal-root"
    response["HX-Reswap"] = "innerHTML"
    return response
