"""What a customer reads is true for the order's state and in their words (issue 31, item 1).

The order page, "My orders", the email and the API say the same about one order; the saga's
own vocabulary (step names, coordination modes, ``compensating``) and staff members' names
never reach a customer's page.
"""

import re
import uuid
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.core import mail
from django.utils.html import strip_tags

from events.registry import Event
from notifications.services import notification_send
from orders.models import Order, OrderEvent, Status
from orders.services import order_cancel
from payments.models import Payment
from sagas.models import SagaStep
from shipping.models import Shipment
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

STEP_NAMES = (
    "reserve_stock",
    "charge_payment",
    "create_shipment",
    "release_stock",
    "refund_payment",
    "cancel_shipment",
)
INTERNAL_WORDS = re.compile(r"orchestration|choreography|compensating", re.IGNORECASE)


class _Text(HTMLParser):
    """The words a browser shows (text nodes, not tags, attributes or scripts)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


@pytest.fixture
def declined(customer, place_order):
    """An order whose card was declined: cancelled, nothing charged, its stock released."""
    order = place_order(customer, ProductFactory(name="Enamel mug", price=Decimal("12.50")), quantity=2)
    Order.objects.filter(pk=order.pk).update(status=Status.CANCELLED, cancellation_reason="payment_declined")
    Payment.objects.create(order_id=order.pk, status="declined", amount=order.total, currency="USD")
    return order


def test_a_declined_orders_page_email_my_orders_and_api_agree(shopper, customer, declined):
    # given the order page opened right after checkout (the banner's moment)
    session = shopper.session
    session["orders_just_placed"] = str(declined.pk)
    session.save()

    page = visible_text(shopper.get(f"/orders/{declined.pk}/").content.decode())
    listing = visible_text(shopper.get("/orders/").content.decode())
    api = shopper.get(f"/api/orders/{declined.pk}/").json()
    notification_send(
        event=Event(
            id=str(uuid.uuid4()),
            name="order.cancelled",
            saga_id=str(declined.pk),
            mode="orchestration",
            publisher="orders",
            data={"reason": "payment_declined", "refunded": "0"},
            context={"order_id": str(declined.pk), "user_id": customer.pk, "total": "25.00", "currency": "USD"},
        )
    )
    [email] = mail.outbox
    email_text = " ".join(strip_tags(str(email.body)).split())

    # then the banner says what happened, not "Thank you! Your order is placed"
    assert "Your card was declined, so nothing was charged." in page
    assert "Thank you" not in page
    # and the page, the list, the email and the API tell the same story
    assert api["status"] == "cancelled" and api["cancellation_reason"] == "payment_declined"
    assert "Cancelled" in page and "Your order is cancelled" in page
    for text in (page, listing, email_text):
        assert "Your card issuer declined the payment." in text
    assert "You were not charged." in page and "You were not charged." in email_text
    assert "We put your items back in your cart: sign in to try another payment method." in email_text
    assert "Cancelled" in listing and "2 \N{MULTIPLICATION SIGN} Enamel mug" in listing and "(2 items)" in listing


def test_the_banner_after_checkout_shows_once_and_thanks_for_an_order_under_way(shopper, customer, place_order):
    order = place_order(customer, ProductFactory())
    session = shopper.session
    session["orders_just_placed"] = str(order.pk)
    session.save()

    first = shopper.get(f"/orders/{order.pk}/").content.decode()
    again = shopper.get(f"/orders/{order.pk}/").content.decode()

    assert "Thank you! Your order is placed" in first
    assert f"/orders/{order.pk}/live/?placed=1" in first  # the live update keeps the banner true
    assert "Thank you! Your order is placed" not in again


def test_a_staff_cancel_names_no_staff_member(shopper, customer, place_order):
    # given an order cancelled by a member of staff called "alice_support"
    order = place_order(customer, ProductFactory())
    order_cancel(order_id=order.pk, actor="alice_support", reason="staff_request")

    html = shopper.get(f"/orders/{order.pk}/").content.decode()

    assert "alice_support" not in html
    assert "Our staff cancelled this order." in visible_text(html)
    assert "Our staff</strong> started cancelling the order" in html


@pytest.mark.parametrize(
    ("status", "reason", "payment", "shipment", "badge"),
    [
        (Status.PENDING, None, None, None, "Received"),
        (Status.PAID, None, "succeeded", "pending", "Paid"),
        (Status.COMPLETED, None, "succeeded", "created", "Shipped"),
        (Status.COMPENSATING, "shipping_failed", "succeeded", "rejected", "Refunding"),
        (Status.COMPENSATING, "customer_request", None, None, "Cancelling"),
        (Status.CANCELLED, "payment_declined", "declined", None, "Cancelled"),
        (Status.NEEDS_ATTENTION, "shipping_failed", "refund_failed", "rejected", "Cancelled"),
    ],
)
def test_no_customer_page_shows_internal_words_or_step_names(
    shopper, customer, place_order, status, reason, payment, shipment, badge
):
    # given an order in each state, with a journal as the saga writes it
    order = place_order(customer, ProductFactory())
    Order.objects.filter(pk=order.pk).update(status=status, cancellation_reason=reason)
    if payment:
        Payment.objects.create(order_id=order.pk, status=payment, amount=order.total, currency="USD")
    if shipment:
        Shipment.objects.create(order_id=order.pk, status=shipment)
    OrderEvent.objects.create(
        order=order, kind="status", from_status="paid", to_status=status, message="create_shipment failed"
    )
    OrderEvent.objects.create(order=order, service="orders", kind="event", name="order.compensating")
    OrderEvent.objects.create(
        order=order, service="payments", kind="compensation", name="refund_payment", message="succeeded"
    )
    SagaStep.objects.filter(saga_id=order.pk, name="reserve_stock").update(status="succeeded")

    pages = [
        shopper.get(url).content.decode() for url in (f"/orders/{order.pk}/", "/orders/", f"/orders/{order.pk}/live/")
    ]

    for html in pages:
        text = visible_text(html)
        assert not INTERNAL_WORDS.search(text), INTERNAL_WORDS.search(text)
        assert not [name for name in STEP_NAMES if name in text]
    assert f'data-testid="order-status">{badge}<' in pages[0]
    assert f'data-testid="order-status">{badge}<' in pages[1]


def test_a_cancelled_order_refunding_late_money_says_so(shopper, customer, place_order):
    # given a cancelled order back in compensating because a charge landed after the cancel
    order = place_order(customer, ProductFactory())
    Order.objects.filter(pk=order.pk).update(status=Status.COMPENSATING, cancellation_reason="payment_failed")
    Payment.objects.create(order_id=order.pk, status="succeeded", amount=order.total, currency="USD")
    OrderEvent.objects.create(order=order, kind="status", from_status="cancelled", to_status="compensating")

    text = visible_text(shopper.get(f"/orders/{order.pk}/").content.decode())

    assert f"We are refunding your payment of ${order.total}." in text
    assert "Refunding" in text
    assert "started refunding a payment that arrived late" in text
