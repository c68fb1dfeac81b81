"""`manage.py create_api_key NAME [--channel web] [--rate-limit 600]`: a key for scripted deployments."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from api.actions import create_api_key
from subscribers.models import Channel


class Command(BaseCommand):
    help = _(
        "Create a bot API key and print it once (only a hash is stored). The key can be limited "
        "to channels and revoked in the administration like any other."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help=_("Who uses the key, e.g. “Messenger bot”."))
        parser.add_argument(
            "--channel",
            action="append",
            default=[],
            dest="channels",
            help=_("The name of a channel the key may use; repeat for several. Default: every channel."),
        )
        parser.add_argument("--rate-limit", type=int, default=600, help=_("Requests per minute (default 600)."))

    def handle(self, *args, name, channels, rate_limit, **options):
        name = name.strip()
        if not name:
            raise CommandError(_("Give the key a name."))
        if rate_limit < 1:
            raise CommandError(_("The rate limit is a number of requests per minute, at least 1."))
        found = list(Channel.objects.filter(name__in=channels))
        unknown = sorted(set(channels) - {channel.name for channel in found})
        if unknown:
            known = ", ".join(Channel.objects.order_by("name").values_list("name", flat=True))
            raise CommandError(
                _("There is no channel called %(unknown)s. The channels are: %(known)s.")
                % {"unknown": ", ".join(unknown), "known": known}
            )
        _key, full_key = create_api_key(name, channels=found, rate_limit_per_minute=rate_limit)
        # The key alone on standard output, so a script can capture it; the rest goes to standard error.
        self.stdout.write(full_key)
        self.stderr.write(_("Created the API key “%(name)s”. It is shown this once: store it now.") % {"name": name})
