"""Order emails go to an address only once the customer who signed up with it proved it theirs."""

import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.verification import tokens
from notifications.models import Notification
from notifications.services import notification_send
from tests.factories import PASSWORD, UserFactory
from tests.notifications.test_emails import order_event

pytestmark = pytest.mark.django_db

LINK = re.compile(r"(https?://[^/\s]+)(/accounts/verify/[^/\s]+/[^/\s]+/)")


def sign_up(client: Client, captured, username: str = "grace") -> User:
    with captured(execute=True):
        client.post(
            "/accounts/signup/",
            {
                "username": username,
                "email": f"{username}@example.com",
                "password": PASSWORD,
                "password_confirm": PASSWORD,
            },
        )
    return User.objects.get(username=username)


def verification_link(message: mail.EmailMessage) -> str:
    found = LINK.search(str(message.body))
    assert found, message.body
    return found.group(2)


def test_signing_up_sends_one_verification_email_with_a_link_from_site_url(
    client, django_capture_on_commit_callbacks, settings
):
    settings.SITE_URL = "https://shop.example.com"

    customer = sign_up(client, django_capture_on_commit_callbacks)

    [message] = mail.outbox
    assert message.to == [customer.email]
    assert message.subject == "Confirm your email address for Northwind Supply"
    assert LINK.search(str(message.body)).group(1) == "https://shop.example.com"


def test_registering_through_the_api_sends_one_too_and_the_token_still_orders(
    anonymous, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = anonymous.post(
            "/api/auth/register/", {"username": "ada", "email": "ada@example.com", "password": PASSWORD}, format="json"
        )

    assert response.status_code == 201
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert anonymous.get("/api/orders/").status_code == 200


def test_an_unverified_customers_order_emails_are_held_and_staff_see_why(client, django_capture_on_commit_callbacks):
    # given a customer who signed up with an address and never followed the link
    customer = sign_up(client, django_capture_on_commit_callbacks)
    mail.outbox.clear()

    # when their order is placed
    event = order_event("order.placed", customer.pk)
    notification_send(event=event)

    # then no order email goes to the address, and the record says why
    assert mail.outbox == []
    notification = Notification.objects.get(event_id=event.id)
    assert (notification.status, notification.recipient, notification.sent_at) == (
        Notification.Status.UNVERIFIED,
        customer.email,
        None,
    )
    assert notification.get_status_display() == "not sent: address not verified"


def test_following_the_link_verifies_the_address_and_the_order_emails_go_out(
    client, django_capture_on_commit_callbacks
):
    customer = sign_up(client, django_capture_on_commit_callbacks)
    link = verification_link(mail.outbox[0])
    mail.outbox.clear()

    page = Client().get(link)  # another browser: the link alone is the proof

    assert page.status_code == 200
    assert "Email address confirmed" in page.content.decode()
    notification_send(event=order_event("order.completed", customer.pk, {"carrier": "SimPost"}))
    assert [m.to for m in mail.outbox] == [[customer.email]]
    assert "not confirmed yet" not in client.get("/account/").content.decode()


def test_a_tampered_link_is_refused_with_a_clear_page(client, django_capture_on_commit_callbacks):
    customer = sign_up(client, django_capture_on_commit_callbacks)
    link = verification_link(mail.outbox[0])
    uidb64, token = link.rstrip("/").split("/")[-2:]
    other = UserFactory()

    for tampered in (
        f"/accounts/verify/{uidb64}/{token[:-1]}{'a' if token[-1] != 'a' else 'b'}/",  # the signature changed
        f"/accounts/verify/{urlsafe_base64_encode(force_bytes(other.pk))}/{token}/",  # someone else's account
        f"/accounts/verify/{uidb64}/{tokens.make_token(other)}/",
        "/accounts/verify/not-base64/abc-def/",
    ):
        page = client.get(tampered)
        assert page.status_code == 400, tampered
        assert "This link does not work" in page.content.decode()

    notification_send(event=order_event("order.placed", customer.pk))
    assert Notification.objects.get().status == Notification.Status.UNVERIFIED


def test_an_expired_link_is_refused(client, django_capture_on_commit_callbacks, monkeypatch, settings):
    customer = sign_up(client, django_capture_on_commit_callbacks)
    monkeypatch.setattr(
        tokens, "_now", lambda: datetime.now() - timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 60)
    )
    old = tokens.make_token(customer)
    monkeypatch.undo()

    page = client.get(verification_link(mail.outbox[0]).rsplit("/", 2)[0] + f"/{old}/")

    assert page.status_code == 400
    assert "This link does not work" in page.content.decode()


def test_a_link_for_an_address_the_account_no_longer_has_does_nothing(client, django_capture_on_commit_callbacks):
    customer = sign_up(client, django_capture_on_commit_callbacks)
    link = verification_link(mail.outbox[0])
    customer.email = "someone-else@example.com"
    customer.save(update_fields=["email"])

    assert client.get(link).status_code == 400


def test_the_account_page_sends_the_link_again(client, django_capture_on_commit_callbacks):
    # given a signed-up customer who lost the first email
    sign_up(client, django_capture_on_commit_callbacks)
    mail.outbox.clear()
    assert "not confirmed yet" in client.get("/account/").content.decode()

    # when they ask for it again from their account page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/verify/resend/", follow=True)

    # then a new link arrives, and it works
    assert "We sent a new confirmation link" in response.content.decode()
    [message] = mail.outbox
    assert client.get(verification_link(message)).status_code == 200
    assert "not confirmed yet" not in client.get("/account/").content.decode()


def test_accounts_made_by_staff_are_trusted(customer):
    # UserFactory, like the admin and createsuperuser, makes an account with no sign-up proof to wait for
    notification_send(event=order_event("order.placed", customer.pk))

    assert [m.to for m in mail.outbox] == [[customer.email]]
