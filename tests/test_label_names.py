import pytest

from labels.models import Label
from labels.names import name_from_title, unique_name

# Also checked through the Add dialog's name endpoint (tests/test_label_dialogs.py).
TITLES_AND_NAMES = [
    ("Intéressé par les produits", "interesse_par_les_produits"),
    ("Besoin d'assistance client", "besoin_d_assistance_client"),
    ("Utilisateurs actifs", "utilisateurs_actifs"),
    ("Product interest", "product_interest"),
    ("Straße", "strasse"),
    ("Клиенты", "klienty"),
    ("  VIP -- customers!  ", "vip_customers"),
    ("2024 promo", "2024_promo"),
    ("  ***  ", "label"),
]


@pytest.mark.parametrize(("title", "name"), TITLES_AND_NAMES)
def test_it_makes_names_from_titles(title, name):
    assert name_from_title(title) == name


def test_it_falls_back_when_nothing_is_left():
    assert name_from_title("  ***  ") == "label"
    assert name_from_title("") == "label"


def test_it_cuts_long_titles_to_64_characters():
    name = name_from_title("word " * 60)
    assert len(name) <= 64
    assert name.startswith("word_word")
    assert not name.endswith("_")


def test_unique_name_adds_a_counter():
    assert unique_name("vip", set()) == "vip"
    assert unique_name("vip", {"vip"}) == "vip_2"
    assert unique_name("vip", {"vip", "vip_2", "vip_3"}) == "vip_4"


def test_unique_name_stays_within_64_characters():
    long = "a" * 64
    assert unique_name(long, {long}) == "a" * 62 + "_2"


@pytest.mark.django_db
def test_free_name_checks_stored_labels():
    Label.objects.create(title="Product interest", name="product_interest")
    Label.objects.create(title="Product interest 2", name="product_interest_2")
    assert Label.objects.free_name("Product Interest!") == "product_interest_3"
    assert Label.objects.free_name("Something new") == "something_new"
