"""The account page, password change and password reset by email."""

import re

import pytest
from django.core import mail
from django.test import Client

from tests.factories import PASSWORD, ProductFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "analytical-engine-1843"


def test_account_page_shows_my_details_and_last_address(shopper, customer, place_order):
    place_order(customer, ProductFactory(), country="DE", city="Berlin", postal_code="10115")

    response = shopper.get("/account/")

    html = response.content.decode()
    assert response.status_code == 200
    assert customer.username in html and customer.email in html
    assert "1 order<" in html
    assert "10115 BERLIN<br>GERMANY" in html  # as the German post writes it
    assert 'name="old_password"' in html


def test_account_page_needs_login(client):
    assert client.get("/account/")["Location"] == "/accounts/login/?next=/account/"


def test_the_header_links_the_account_page(shopper):
    assert 'href="/account/"' in shopper.get("/").content.decode()


def test_changing_the_password_keeps_me_signed_in(shopper, customer):
    response = shopper.post(
        "/account/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )

    customer.refresh_from_db()
    assert customer.check_password(NEW_PASSWORD)
    assert "Your password was changed." in response.content.decode()
    assert shopper.get("/account/").status_code == 200  # still signed in


def test_changing_the_password_signs_out_my_other_browsers(shopper, customer):
    other = Client()
    other.force_login(customer)

    shopper.post("/account/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert other.get("/account/").status_code == 302


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, "incorrectly"),
        ({"old_password": PASSWORD, "new_password1": "short", "new_password2": "short"}, "too short"),
        ({"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": "other-one-1843"}, "match"),
    ],
)
def test_a_wrong_password_change_is_refused_on_the_page(shopper, customer, form, message):
    response = shopper.post("/account/", form)

    customer.refresh_from_db()
    assert response.status_code == 200
    assert message in response.content.decode()
    assert customer.check_password(PASSWORD)


def test_login_page_offers_password_reset(client):
    assert 'href="/accounts/password_reset/"' in client.get("/accounts/login/").content.decode()


def test_password_reset_by_email(client, customer, settings, run_outbox):
    # when a customer asks for a reset with their email
    response = client.post("/accounts/password_reset/", {"email": customer.email}, follow=True)

    # then they are told to check their email, and one email with a link arrives (sent by a worker)
    assert "Check your email" in response.content.decode()
    run_outbox("accounts.password_reset_email")
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [customer.email]
    assert email.subject == "Reset your Northwind Supply password"
    link = re.search(re.escape(settings.SITE_URL) + r"(/accounts/reset/\S+/)", email.body).group(1)

    # when they follow it and choose a new password
    form_page = client.get(link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True
    )

    # then the password is changed and the link is spent
    customer.refresh_from_db()
    assert customer.check_password(NEW_PASSWORD)
    assert "Your password is changed" in done.content.decode()
    assert "This link no longer works" in client.get(link, follow=True).content.decode()


def test_password_reset_for_an_unknown_email_reveals_nothing(client, run_outbox):
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.com"}, follow=True)

    assert "Check your email" in response.content.decode()
    assert run_outbox("accounts.password_reset_email") == 1
    assert mail.outbox == []
