"""``seed_demo`` (run by ``make run``): the demo customer only in an empty database, no token shown."""

import re
from io import StringIO

from django.contrib.auth.models import User
from django.core.management import call_command
from knox.models import AuthToken

from shop.models import Product
from tests.factories import UserFactory


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_an_empty_database_gets_the_catalog_and_the_demo_customer_and_no_token_is_printed(db):
    output = seed()
    assert Product.objects.count() == 15
    assert User.objects.filter(username="demo").exists()
    assert not AuthToken.objects.exists()
    assert "token" not in output.lower()
    assert not re.search(r"[0-9a-f]{32,}", output)


def test_a_database_with_accounts_gets_no_demo_customer(db):
    UserFactory(username="real-customer")
    seed()
    assert not User.objects.filter(username="demo").exists()


def test_a_deleted_demo_customer_is_not_recreated(db):
    seed()
    User.objects.filter(username="demo").delete()
    UserFactory()
    seed()
    assert not User.objects.filter(username="demo").exists()
