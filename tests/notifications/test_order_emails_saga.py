"""The customer's emails end to end: API → outbox → broker → a real worker → a real SMTP server."""

import email
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from core.templatetags.shop_tags import order_number
from notifications.models import Notification
from orders.models import OrderEvent, Status
from tests import provider
from tests.factories import ProductFactory, order_body, post_order
from tests.worker import wait_for_step, wait_for_terminal

pytestmark = pytest.mark.saga


class MailCatcher:
    """An SMTP server's handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        message = email.message_from_bytes(content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def received(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[MailCatcher, int]]:
    catcher = MailCatcher()
    port = free_port()
    controller = Controller(catcher, hostname="127.0.0.1", port=port)
    controller.start()
    yield catcher, port
    controller.stop()


def text_and_html(message: EmailMessage) -> tuple[str, str]:
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None, "each email has a text and an HTML part"
    return str(plain.get_content()), str(html.get_content())


@provider.SLOW
def test_each_order_emails_its_customer_once_when_placed_and_once_when_it_ends(
    saga, special_worker, smtp_server, api, customer
):
    # given a worker that sends its email through a real SMTP server
    catcher, port = smtp_server
    special_worker(env={"EMAIL_URL": f"smtp://127.0.0.1:{port}"})
    product = ProductFactory(stock=20)

    # when a customer places four orders: one is cancelled by them while its charge is in
    # flight, one completes, one is declined, and one cannot be undone cleanly
    cancelled = post_order(api, order_body(product, token="tok_slow"))
    completed = post_order(api, order_body(product, token="tok_visa"))
    declined = post_order(api, order_body(product, token="tok_decline"))
    attention = post_order(api, order_body(product, token="tok_refund_fails", postal_code="00000"))
    wait_for_step(cancelled, "charge_payment", "running")
    assert api.post(f"/api/orders/{cancelled}/cancel/").status_code == 202
    orders = wait_for_terminal([cancelled, completed, declined, attention], timeout=60)
    assert orders[completed].status == Status.COMPLETED
    assert (orders[cancelled].status, orders[cancelled].cancellation_reason) == (Status.CANCELLED, "customer_request")
    assert (orders[declined].status, orders[declined].cancellation_reason) == (Status.CANCELLED, "payment_declined")
    assert orders[attention].status == Status.NEEDS_ATTENTION

    # then each order's two emails arrive (placed, and how it ended), each once
    deadline = time.monotonic() + 30
    while len(catcher.received()) < 8 or Notification.objects.count() < 8:
        assert time.monotonic() < deadline, f"only {len(catcher.received())} emails arrived"
        time.sleep(0.1)
    messages = catcher.received()
    assert all(m["To"] == customer.email for m in messages)
    assert len({m["Message-ID"] for m in messages}) == len(messages)
    subjects = Counter(str(m["Subject"]) for m in messages)
    expected = Counter(
        [f"We have your order #{order_number(o)}" for o in (cancelled, completed, declined, attention)]
        + [
            f"Your order #{order_number(completed)} is on its way",
            f"Your order #{order_number(cancelled)} is cancelled",
            f"Your order #{order_number(declined)} is cancelled",
            f"Your order #{order_number(attention)}: our staff are on it",
        ]
    )
    assert subjects == expected

    # and they tell the customer what they need to know
    def news(order_id: str, subject_ends: str) -> str:
        [message] = [m for m in messages if str(m["Subject"]).endswith(f"#{order_number(order_id)}{subject_ends}")]
        text, html = text_and_html(message)
        return text + "\n" + html

    shipment = api.get(f"/api/orders/{completed}/").json()["shipment"]
    assert shipment["tracking_number"] in news(completed, " is on its way")
    assert shipment["carrier"] in news(completed, " is on its way")
    refunded = api.get(f"/api/orders/{cancelled}/").json()["payment"]["refunded_amount"]
    assert refunded == str(orders[cancelled].total)
    assert f"We refunded ${refunded}" in news(cancelled, " is cancelled")
    assert "You cancelled this order." in news(cancelled, " is cancelled")
    assert "You were not charged." in news(declined, " is cancelled")
    assert "Your card issuer declined the payment." in news(declined, " is cancelled")
    assert "Your money is safe" in news(attention, ": our staff are on it")
    assert "We will contact you" in news(attention, ": our staff are on it")

    # and the order's journal shows the notifications service at work
    journal = OrderEvent.objects.filter(order_id=completed, service="notifications")
    assert list(journal.values_list("name", flat=True)) == ["email.sent", "email.sent"]
