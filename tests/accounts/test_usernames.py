"""Reserved and confusable usernames cannot be registered, through the API or the sign-up page."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.factories import PASSWORD

REFUSED = [
    "system",
    "sweeper",
    "Staff",
    "admin",
    "Administrator",
    "root2",
    "site_admin",
    "\u0430dmin",  # Cyrillic a
    "s\u0443stem",  # Cyrillic u (looks like y)
    "\uff41\uff44\uff4d\uff49\uff4e",  # fullwidth "admin"
    "\u1d00dmin",  # small capital A
    "\u00e1dmin",  # a with an accent
    "adm1n",
    "SWEEPER",
    "payments",
]
ALLOWED = ["grace", "staffan", "jos\u00e9", "\u043c\u0430\u0440\u0438\u044f", "ada.lovelace+shop"]


def register(username):
    from rest_framework.test import APIClient

    return APIClient().post(
        "/api/auth/register/",
        {"username": username, "email": "someone@example.com", "password": PASSWORD},
        format="json",
    )


@pytest.mark.parametrize("username", REFUSED)
def test_reserved_and_look_alike_usernames_are_refused_by_the_api(db, username):
    response = register(username)
    assert response.status_code == 400
    assert response.json()["username"] == ["This username is not available."]
    assert response.json()["errors"] == {
        "username": [{"code": "username_unavailable", "detail": "This username is not available."}]
    }
    assert not User.objects.exists()


@pytest.mark.parametrize("username", ALLOWED)
def test_ordinary_usernames_in_any_one_script_are_welcome(db, username):
    response = register(username)
    assert response.status_code == 201, response.content
    # the account is theirs, under the name they chose, and they can sign in with it
    assert response.json()["username"] == username
    assert Client().login(username=username, password=PASSWORD)


def test_the_signup_page_refuses_them_too(db):
    form = {"username": "\u0430dmin", "email": "a@example.com", "password": PASSWORD, "password_confirm": PASSWORD}
    page = Client().post("/accounts/signup/", form)
    assert page.status_code == 200
    assert "This username is not available." in page.content.decode()
    assert not User.objects.exists()
