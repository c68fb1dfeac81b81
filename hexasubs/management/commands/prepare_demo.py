"""What `make run` does after migrating: demo data on an empty database and a login to use."""

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from subscribers.models import Subscriber

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "hexasubs-demo"


class Command(BaseCommand):
    help = "Seed demo subscribers when there are none and create a demo superuser when there is none."

    def add_arguments(self, parser):
        parser.add_argument("--subscribers", type=int, default=2000)

    def handle(self, *args, subscribers, **options):
        if not Subscriber.objects.exists():
            call_command("seed_demo", subscribers=subscribers, plan_group=True, stdout=self.stdout)
        User = get_user_model()
        if not User.objects.filter(is_superuser=True).exists():
            User.objects.create_superuser(DEMO_USERNAME, email="", password=DEMO_PASSWORD)
            self.stdout.write(self.style.SUCCESS(f"Log in as {DEMO_USERNAME} / {DEMO_PASSWORD}"))
        else:
            self.stdout.write("Log in with your existing superuser (the demo one is admin / hexasubs-demo).")
