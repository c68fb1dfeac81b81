import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from labels.models import Label
from subscribers.models import Subscriber, SubscriberLabel

pytestmark = pytest.mark.django_db


def _snapshot():
    return (
        Subscriber.objects.count(),
        Label.objects.count(),
        SubscriberLabel.objects.count(),
        list(Subscriber.objects.order_by("pk").values_list("foreign_id", "first_name", "last_name")[:50]),
    )


def test_it_seeds_realistic_subscribers_and_the_guide_labels():
    call_command("seed_demo", subscribers=300, labels=12)

    assert Subscriber.objects.count() == 300
    assert set(Label.objects.values_list("name", flat=True)) >= {"product_interest", "need_support", "active_users"}
    assert Label.objects.count() == 12
    assert set(Subscriber.objects.values_list("channel__name", flat=True)) == {"messenger", "web", "console"}
    assert Subscriber.objects.values("locale").distinct().count() > 5
    assert Subscriber.objects.values("gender").distinct().count() >= 3
    for subscriber in Subscriber.objects.all():
        subscriber.full_clean()
    counts = dict(Label.objects.annotate(n=Count("assignments")).values_list("name", "n"))
    assert counts["active_users"] > counts["need_support"] > counts["beta_testers"]


def test_running_it_twice_duplicates_nothing():
    call_command("seed_demo", subscribers=200)
    first = _snapshot()
    call_command("seed_demo", subscribers=200)
    assert _snapshot() == first


def test_a_larger_run_adds_only_the_missing_subscribers():
    call_command("seed_demo", subscribers=100)
    call_command("seed_demo", subscribers=150)
    assert Subscriber.objects.count() == 150


def test_it_refuses_negative_counts():
    with pytest.raises(CommandError, match="zero or more"):
        call_command("seed_demo", subscribers=-1)


def test_prepare_demo_seeds_an_empty_database_and_creates_a_login(django_user_model, capsys):
    call_command("prepare_demo", subscribers=50)
    assert Subscriber.objects.count() == 50
    assert django_user_model.objects.get(username="admin").check_password("hexasubs-demo")
    assert "admin / hexasubs-demo" in capsys.readouterr().out

    call_command("prepare_demo", subscribers=50)
    assert django_user_model.objects.count() == 1
