"""Fill the database with realistic demo subscribers and labels.

Deterministic: subscriber number i always gets the same channel, foreign id,
names and labels, so running the command twice adds nothing, and a larger
--subscribers adds only the missing ones.
"""

import random
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Exists, OuterRef
from django.utils import timezone
from faker import Faker

from labels.models import Color, Label, LabelGroup
from subscribers.models import Channel, Gender, Subscriber, SubscriberLabel

# (title, name, description, colour, share of subscribers carrying it)
DEMO_LABELS = [
    ("Interested in products", "product_interest", "Users who showed interest in specific products.", Color.BLUE, 0.30),
    ("Needs customer support", "need_support", "Users who asked for customer support.", Color.RED, 0.12),
    ("Active users", "active_users", "Users who talked to the chatbot in the last 30 days.", Color.GREEN, 0.45),
    ("Newsletter", "newsletter", "Users who subscribed to the weekly newsletter.", Color.INDIGO, 0.20),
    ("VIP customers", "vip_customers", "Customers with more than five orders.", Color.PURPLE, 0.03),
    ("Abandoned cart", "abandoned_cart", "Users who left items in their cart.", Color.ORANGE, 0.08),
    ("Beta testers", "beta_testers", "Users who volunteered to test new features.", Color.TEAL, 0.01),
    ("Promo: Black Friday", "promo_black_friday", "Audience of the Black Friday broadcast.", Color.YELLOW, 0.15),
    ("Feedback given", "feedback_given", "Users who answered the satisfaction survey.", Color.PINK, 0.06),
    ("Unsubscribed from promotions", "no_promotions", "Users who asked not to receive promotions.", Color.GRAY, 0.04),
]

# (Faker locale, BCP 47 tag, country, time zone as the channel reports it, weight)
DEMO_LOCALES = [
    ("en_US", "en-US", "US", "-5", 30),
    ("en_GB", "en-GB", "GB", "0", 10),
    ("fr_FR", "fr-FR", "FR", "1", 15),
    ("de_DE", "de-DE", "DE", "1", 10),
    ("es_ES", "es-ES", "ES", "1", 8),
    ("es_MX", "es-MX", "MX", "-6", 6),
    ("pt_BR", "pt-BR", "BR", "-3", 8),
    ("it_IT", "it-IT", "IT", "1", 5),
    ("nl_NL", "nl-NL", "NL", "1", 3),
    ("ru_RU", "ru-RU", "RU", "3", 2),
    ("hi_IN", "en-IN", "IN", "5.5", 3),
]

# An exclusive label group (labels.LabelGroup): each subscriber is on one plan at most. (title, name, colour, share)
DEMO_PLAN_GROUP = ("Plan", "plan", "The subscription plan: a subscriber is on one at most.")
DEMO_PLANS = [
    ("Plan: free", "plan_free", Color.GRAY, 0.50),
    ("Plan: pro", "plan_pro", Color.BLUE, 0.15),
    ("Plan: enterprise", "plan_enterprise", Color.PURPLE, 0.03),
]

CHANNEL_WEIGHTS = {"messenger": 60, "web": 35, "console": 5}
NAMES_PER_POOL = 400
BATCH_SIZE = 5000


class Command(BaseCommand):
    help = "Create demo subscribers and labels (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--subscribers", type=int, default=2000, help="How many demo subscribers should exist.")
        parser.add_argument("--labels", type=int, default=len(DEMO_LABELS), help="How many demo labels should exist.")
        parser.add_argument(
            "--plan-group",
            action="store_true",
            help="Also the exclusive label group “Plan” (free / pro / enterprise), one plan at most per subscriber.",
        )

    def handle(self, *args, subscribers, labels, plan_group=False, **options):
        if subscribers < 0 or labels < 0:
            raise CommandError("--subscribers and --labels must be zero or more.")
        started = time.monotonic()
        channels = {channel.name: channel for channel in Channel.objects.filter(name__in=CHANNEL_WEIGHTS)}
        if len(channels) != len(CHANNEL_WEIGHTS):
            raise CommandError("The standard channels are missing: run `manage.py migrate` first.")

        demo_labels = self._ensure_labels(labels)
        created = self._ensure_subscribers(subscribers, channels)
        assigned = self._ensure_assignments(demo_labels)
        if plan_group:
            assigned += self._ensure_plan_group()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {subscribers} subscribers ({created} new), {len(demo_labels)} labels, "
                f"{assigned} new label assignments, in {time.monotonic() - started:.1f} s."
            )
        )

    def _ensure_labels(self, count):
        specs = list(DEMO_LABELS[:count])
        colors = list(Color)
        for number in range(len(DEMO_LABELS), count):
            # Extra labels beyond the named ones: a long tail carried by few subscribers.
            specs.append((f"Segment {number + 1}", f"segment_{number + 1}", "", colors[number % len(colors)], 0.002))
        Label.objects.bulk_create(
            [Label(title=title, name=name, description=text, color=color) for title, name, text, color, _ in specs],
            ignore_conflicts=True,
        )
        by_name = Label.objects.in_bulk([spec[1] for spec in specs], field_name="name")
        return [(by_name[name], share) for _, name, _, _, share in specs if name in by_name]

    def _ensure_subscribers(self, count, channels):
        pools = _name_pools()
        locale_weights = [spec[4] for spec in DEMO_LOCALES]
        channel_names = list(CHANNEL_WEIGHTS)
        channel_weights = list(CHANNEL_WEIGHTS.values())
        genders = [Gender.MALE, Gender.FEMALE, Gender.OTHER, ""]
        now = timezone.now()
        before = Subscriber.objects.count()
        for start in range(0, count, BATCH_SIZE):
            batch = []
            for number in range(start, min(start + BATCH_SIZE, count)):
                rng = random.Random(number)
                faker_locale, tag, country, tz, _ = rng.choices(DEMO_LOCALES, locale_weights)[0]
                channel_name = rng.choices(channel_names, channel_weights)[0]
                gender = rng.choices(genders, [46, 46, 3, 5])[0]
                first_names = pools[faker_locale]["female" if gender == Gender.FEMALE else "male"]
                created_at = now - timedelta(seconds=rng.randrange(365 * 24 * 3600))
                updated_at = created_at + (now - created_at) * rng.random() ** 2
                batch.append(
                    Subscriber(
                        channel=channels[channel_name],
                        foreign_id=_foreign_id(channel_name, number, rng),
                        first_name=rng.choice(first_names),
                        last_name=rng.choice(pools[faker_locale]["last"]),
                        gender=gender,
                        locale=tag,
                        timezone=tz,
                        country=country,
                        created_at=created_at,
                        updated_at=updated_at,
                        last_seen_at=updated_at + (now - updated_at) * rng.random(),
                    )
                )
            Subscriber.objects.bulk_create(batch, ignore_conflicts=True)
        return Subscriber.objects.count() - before

    def _ensure_assignments(self, demo_labels):
        before = SubscriberLabel.objects.count()
        # Subscribers that already carry labels were labelled by an earlier run (or by an operator since).
        demo = (
            Subscriber.objects.filter(foreign_id__startswith="demo")
            .exclude(Exists(SubscriberLabel.objects.filter(subscriber=OuterRef("pk"))))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        rows = []
        for subscriber_id in demo.iterator(chunk_size=BATCH_SIZE):
            rng = random.Random(f"labels-{subscriber_id}")
            rows.extend(
                SubscriberLabel(subscriber_id=subscriber_id, label_id=label.pk)
                for label, share in demo_labels
                if rng.random() < share
            )
            if len(rows) >= BATCH_SIZE:
                SubscriberLabel.objects.bulk_create(rows, ignore_conflicts=True)
                rows = []
        SubscriberLabel.objects.bulk_create(rows, ignore_conflicts=True)
        return SubscriberLabel.objects.count() - before

    def _ensure_plan_group(self):
        """The demo exclusive group and its labels; demo subscribers get one plan at most, once."""
        title, name, description = DEMO_PLAN_GROUP
        group, _ = LabelGroup.objects.get_or_create(
            name=name, defaults={"title": title, "description": description, "exclusive": True}
        )
        Label.objects.bulk_create(
            [Label(title=title, name=name, color=color, group=group) for title, name, color, _ in DEMO_PLANS],
            ignore_conflicts=True,
        )
        plans = list(Label.objects.filter(group=group).order_by("pk"))
        if SubscriberLabel.objects.filter(label__in=plans).exists():
            return 0
        by_name = {label.name: label for label in plans}
        rows = []
        demo = Subscriber.objects.filter(foreign_id__startswith="demo").order_by("pk").values_list("pk", flat=True)
        for subscriber_id in demo.iterator(chunk_size=BATCH_SIZE):
            draw, bound = random.Random(f"plan-{subscriber_id}").random(), 0.0
            for _, plan_name, _, share in DEMO_PLANS:
                bound += share
                if draw < bound and plan_name in by_name:
                    rows.append(SubscriberLabel(subscriber_id=subscriber_id, label_id=by_name[plan_name].pk))
                    break
        SubscriberLabel.objects.bulk_create(rows, batch_size=BATCH_SIZE, ignore_conflicts=True)
        return len(rows)


def _foreign_id(channel_name, number, rng):
    """A plausible id for the channel; the `demo` prefix marks seeded people."""
    if channel_name == "messenger":
        return f"demo{rng.randrange(10**15, 10**16)}{number}"
    return f"demo-{channel_name}-{number:08d}"


def _name_pools():
    """Names drawn once per locale; combining them is far faster than asking Faker per row."""
    pools = {}
    for faker_locale, *_ in DEMO_LOCALES:
        fake = Faker(faker_locale)
        fake.seed_instance(faker_locale)
        pools[faker_locale] = {
            "male": [fake.first_name_male() for _ in range(NAMES_PER_POOL)],
            "female": [fake.first_name_female() for _ in range(NAMES_PER_POOL)],
            "last": [fake.last_name() for _ in range(NAMES_PER_POOL)],
        }
    return pools
