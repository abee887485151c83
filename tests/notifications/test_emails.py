"""The customer's order emails, rendered and sent through Django's locmem backend."""

import threading
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import strip_tags

from accounts.models import EmailVerification
from events.models import InboxEntry
from events.registry import Event
from events.services import event_handle
from notifications.models import Notification
from notifications.services import notification_send
from orders.models import Order, OrderEvent
from orders.services import OrderItem, order_place
from tests.factories import ProductFactory, UserFactory, address

ORDER_ID = "a0e84265-1c2b-4d5e-8f90-123456789abc"


def order_event(name: str, user_id: int, data: dict[str, Any] | None = None, **context: Any) -> Event:
    return Event(
        id=str(uuid.uuid4()),
        name=name,
        saga_id=ORDER_ID,
        mode="orchestration",
        publisher="orders",
        data=data or {},
        context={"order_id": ORDER_ID, "user_id": user_id, "total": "39.50", "currency": "USD", **context},
    )


def bodies(message: mail.EmailMessage) -> tuple[str, str]:
    """The plain-text body, and the words of the HTML one as a mail client shows them."""
    assert isinstance(message, mail.EmailMultiAlternatives)
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert str(html).lstrip().startswith("<!DOCTYPE html>")
    return str(message.body), strip_tags(str(html))


def test_order_placed_email_names_the_order_its_total_lines_and_address(customer):
    # given a customer's order placed
    event = order_event(
        "order.placed",
        customer.pk,
        payment_token="tok_visa",
        shipping_address={"name": "Ada Lovelace", "line1": "12 Analytical Row", "city": "London",
                          "postal_code": "N1 9GU", "country": "GB"},
        lines=[{"line_id": 1, "sku": "MUG-001", "quantity": 2}],
    )  # fmt: skip

    # when the notifications service handles it
    notification_send(event=event)

    # then the customer gets one email saying so, in text and HTML
    [message] = mail.outbox
    assert message.to == [customer.email]
    assert message.subject == "We have your order #a0e84265"
    text, html = bodies(message)
    for body in (text, html):
        assert "#a0e84265" in body
        assert "$39.50" in body
        assert "MUG-001" in body
    # the address as the Royal Mail writes it: the town, then the postcode, each on its line
    assert "  12 Analytical Row\n  LONDON\n  N1 9GU\n  UNITED KINGDOM\n" in text
    assert "12 Analytical Row<br>LONDON<br>N1 9GU<br>UNITED KINGDOM" in str(message.alternatives[0][0])
    assert "tok_visa" not in text + html
    assert Notification.objects.get(event_id=event.id).status == Notification.Status.SENT


def test_completed_email_gives_the_carrier_and_tracking_number(customer):
    notification_send(
        event=order_event("order.completed", customer.pk, {"carrier": "SimPost", "tracking_number": "SIM123456789"})
    )

    [message] = mail.outbox
    assert message.subject == "Your order #a0e84265 is on its way"
    for body in bodies(message):
        assert "SIM123456789" in body
        assert "SimPost" in body


@pytest.mark.parametrize(
    ("reason", "refunded", "says_why", "says_money"),
    [
        ("shipping_failed", "39.50", "The carrier could not accept the delivery address.", "We refunded $39.50"),
        ("payment_declined", "0", "Your card issuer declined the payment.", "You were not charged."),
        ("customer_request", "39.50", "You cancelled this order.", "We refunded $39.50"),
    ],
)
def test_cancelled_email_says_why_in_plain_words_and_what_was_refunded(
    customer, reason, refunded, says_why, says_money
):
    notification_send(event=order_event("order.cancelled", customer.pk, {"reason": reason, "refunded": refunded}))

    [message] = mail.outbox
    assert message.subject == "Your order #a0e84265 is cancelled"
    for body in bodies(message):
        assert says_why in body
        assert says_money in body
        assert reason not in body  # the customer's words, not the code's


def test_needs_attention_email_says_the_money_is_safe_and_that_we_will_be_in_touch(customer):
    notification_send(event=order_event("order.needs_attention", customer.pk, {"reason": "shipping_failed"}))

    [message] = mail.outbox
    assert message.subject == "Your order #a0e84265: our staff are on it"
    for body in bodies(message):
        assert "Your money is safe" in body
        assert "We will contact you" in body
        assert "The carrier could not accept the delivery address." in body


@pytest.mark.django_db
def test_a_customer_without_an_email_address_gets_nothing_and_the_skip_is_recorded():
    # given a customer who never gave an email address
    customer = UserFactory(email="")

    # when their order completes
    event = order_event("order.completed", customer.pk, {"carrier": "SimPost", "tracking_number": "SIM1"})
    notification_send(event=event)

    # then no email goes out, and staff can see why
    assert mail.outbox == []
    notification = Notification.objects.get(event_id=event.id)
    assert (notification.status, notification.recipient, notification.sent_at) == (
        Notification.Status.SKIPPED,
        "",
        None,
    )


@pytest.mark.parametrize("proven", [True, False])
def test_the_customer_and_whether_they_proved_their_address_are_one_read(customer, proven):
    # given a customer who signed up, and proved their address or not
    sent_at = timezone.now()
    EmailVerification.objects.create(
        user=customer, email=customer.email, sent_at=sent_at, verified_at=sent_at if proven else None
    )

    # when their order completes
    event = order_event("order.completed", customer.pk, {"carrier": "SimPost", "tracking_number": "SIM1"})
    with CaptureQueriesContext(connection) as emailing:
        notification_send(event=event)

    # then one statement read the account and its proof, and the email went out only to a proven address
    tables = (User._meta.db_table, EmailVerification._meta.db_table)
    reads = [q["sql"] for q in emailing.captured_queries if any(f'"{t}"' in q["sql"] for t in tables)]
    assert len(reads) == 1, reads
    expected = Notification.Status.SENT if proven else Notification.Status.UNVERIFIED
    assert Notification.objects.get(event_id=event.id).status == expected
    assert len(mail.outbox) == (1 if proven else 0)


def test_the_same_event_delivered_twice_sends_one_email(customer):
    # given an order.completed event as the broker delivers it
    event = order_event("order.completed", customer.pk, {"carrier": "SimPost", "tracking_number": "SIM42"})
    message = {k: getattr(event, k) for k in ("id", "name", "saga_id", "mode", "publisher", "data", "context")}

    # when it is delivered twice (at-least-once delivery)
    event_handle(consumer="notifications.email_customer", message=message, attempt=0)
    event_handle(consumer="notifications.email_customer", message=message, attempt=0)

    # then the customer got one email, and one is recorded
    assert [m.subject for m in mail.outbox] == ["Your order #a0e84265 is on its way"]
    assert Notification.objects.filter(event_id=event.id).count() == 1


def test_a_parked_event_delivered_again_sends_nothing(customer):
    # given an order.placed event whose handling was parked (its retries spent)
    event = order_event("order.placed", customer.pk)
    message = {k: getattr(event, k) for k in ("id", "name", "saga_id", "mode", "publisher", "data", "context")}
    InboxEntry.objects.create(
        consumer="notifications.email_customer",
        event_id=event.id,
        event_name=event.name,
        saga_id=event.saga_id,
        parked=True,
        error="SMTP down",
    )

    # when a late copy of it is delivered
    event_handle(consumer="notifications.email_customer", message=message, attempt=0)

    # then nothing is sent or recorded: only a person's re-queue sends it again
    assert mail.outbox == []
    assert not Notification.objects.filter(event_id=event.id).exists()
    assert InboxEntry.objects.get(event_id=event.id).parked


def test_a_mail_server_that_refuses_leaves_nothing_recorded_so_the_event_comes_again(customer, settings, monkeypatch):
    # given a mail server that refuses the message
    def refuse(*args: object, **kwargs: object) -> int:
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr(mail.EmailMultiAlternatives, "send", refuse)
    event = order_event("order.placed", customer.pk)
    message = {k: getattr(event, k) for k in ("id", "name", "saga_id", "mode", "publisher", "data", "context")}

    # when the event is handled
    event_handle(consumer="notifications.email_customer", message=message, attempt=0)

    # then it is not recorded as sent (nor handled): the inbox delivers it again later
    assert not Notification.objects.filter(event_id=event.id).exists()
    monkeypatch.undo()
    event_handle(consumer="notifications.email_customer", message=message, attempt=1)
    assert [m.subject for m in mail.outbox] == ["We have your order #a0e84265"]
    assert Notification.objects.get(event_id=event.id).status == Notification.Status.SENT


@pytest.mark.django_db(transaction=True)
def test_an_emails_journal_line_waits_for_no_step_that_holds_the_order(customer, no_saga_worker):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's: a SQLite writer holds the whole database")
    # given an order whose saga's step holds its lock (a step's transaction, in another thread)
    product = ProductFactory(stock=5)
    order = order_place(
        user=customer, items=[OrderItem(str(product.sku), 1)], shipping_address=address(), payment_token="tok_visa"
    )
    held, done = threading.Event(), threading.Event()

    def step_holding_the_order() -> None:
        try:
            with transaction.atomic():
                Order.objects.lock(order.pk)
                held.set()
                done.wait(10)
        finally:
            connections.close_all()

    step = threading.Thread(target=step_holding_the_order)
    step.start()
    assert held.wait(5)
    event = Event(
        id=str(uuid.uuid4()),
        name="order.placed",
        saga_id=str(order.pk),
        mode=order.coordination,
        publisher="orders",
        data={},
        context={"order_id": str(order.pk), "user_id": customer.pk, "total": "12.00", "currency": "USD"},
    )

    # when the email goes meanwhile, in a transaction that would give up on waiting for a lock
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            notification_send(event=event)
    finally:
        done.set()
        step.join()

    # then its journal line was written without the order's lock, naming the status it had
    line = OrderEvent.objects.get(order_id=order.pk, service="notifications")
    assert (line.name, line.to_status) == ("email.sent", "pending")
