"""The order page in the customer's words: status, money, next steps; the saga folded away."""

from decimal import Decimal

import pytest
from django.test import override_settings

from orders.models import Order, OrderEvent, Status
from orders.staff import order_note_add
from payments.models import Payment
from sagas.models import SagaStep
from shipping.models import Shipment
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(customer, place_order):
    return place_order(customer, ProductFactory(name="Enamel mug", price=Decimal("12.50")), quantity=2, country="DE")


def main_text(html: str) -> str:
    """The page without its folded technical timeline."""
    start = html.index('<details class="card technical"')
    return html[:start] + html[html.index("</details>", start) :]


def set_state(order, status, reason=None, payment=None, refunded="0"):
    Order.objects.filter(pk=order.pk).update(status=status, cancellation_reason=reason)
    if payment:
        Payment.objects.create(
            order_id=order.pk, status=payment, amount=order.total, refunded_amount=Decimal(refunded), currency="USD"
        )


@pytest.mark.parametrize(
    ("status", "reason", "payment", "refunded", "headline", "expected"),
    [
        (Status.PENDING, None, None, "0", "We have your order", "We are setting your items aside."),
        (Status.RESERVED, None, None, "0", "Your items are set aside", "We are charging your payment now."),
        (Status.PAID, None, "succeeded", "0", "Payment received", "We charged $25.00."),
        (
            Status.COMPENSATING,
            "shipping_failed",
            "succeeded",
            "0",
            "We are cancelling your order",
            "We are refunding your payment of $25.00.",
        ),
        (Status.CANCELLED, "payment_declined", "declined", "0", "Your order is cancelled", "You were not charged."),
        (
            Status.CANCELLED,
            "shipping_failed",
            "refunded",
            "25.00",
            "Your order is cancelled",
            "We refunded $25.00 to your payment method.",
        ),
    ],
)
def test_the_status_reads_in_plain_language(shopper, order, status, reason, payment, refunded, headline, expected):
    set_state(order, status, reason, payment, refunded)

    html = shopper.get(f"/orders/{order.pk}/").content.decode()

    assert f'data-testid="status-headline">{headline}<' in html
    assert expected in html


def test_needs_attention_tells_the_customer_about_their_money_and_the_staff(shopper, order):
    # given an order whose refund kept failing
    set_state(order, Status.NEEDS_ATTENTION, "shipping_failed", "refund_failed")
    SagaStep.objects.create(
        saga_id=order.pk, name="refund_payment", kind="compensation", position=101, status="failed",
        error="RefundFailed: provider refused (attempt 5)",
    )  # fmt: skip

    html = shopper.get(f"/orders/{order.pk}/").content.decode()

    # then the main text says what happens to the $25.00 and that staff know, in plain words
    main = main_text(html)
    assert "We could not refund your payment of $25.00 automatically." in main
    assert "Our staff have been told" in main
    assert "The carrier could not accept the delivery address." in main
    assert "RefundFailed" not in main and "attempt" not in main
    # and the technical detail is still there, folded
    assert "RefundFailed: provider refused (attempt 5)" in html


def test_a_completed_order_gives_its_tracking_number(shopper, order):
    set_state(order, Status.COMPLETED, payment="succeeded")
    Shipment.objects.create(order_id=order.pk, status="created", carrier="SimPost", tracking_number="SP123456")

    html = main_text(shopper.get(f"/orders/{order.pk}/").content.decode())

    assert "Your order is on its way" in html
    assert "Track it with SimPost: SP123456." in html


def test_the_technical_timeline_is_folded_and_holds_the_steps(shopper, order):
    html = shopper.get(f"/orders/{order.pk}/").content.decode()

    assert '<details class="card technical" data-testid="technical-timeline">' in html  # closed
    main = main_text(html)
    assert "reserve_stock" not in main and "Reserve stock" not in main
    assert "Reserve stock" in html and "You</strong> placed the order" in html


def test_the_live_update_refreshes_the_timeline_out_of_band(shopper, order):
    html = shopper.get(f"/orders/{order.pk}/live/").content.decode()

    # the status panel is swapped in place; the timeline is swapped inside its <details>
    assert html.lstrip().startswith('<div id="order-live"')
    assert '<div id="order-timeline" class="technical-body" hx-swap-oob="true">' in html
    assert "<details" not in html


@override_settings(TIME_ZONE="Europe/Berlin")
def test_times_are_in_the_shops_time_zone_with_the_zone_named(shopper, order):
    Order.objects.filter(pk=order.pk).update(created_at="2026-01-15T12:30:00Z")

    html = shopper.get(f"/orders/{order.pk}/").content.decode()
    listing = shopper.get("/orders/").content.decode()

    assert "Jan 15, 2026, 13:30 CET" in html
    assert "Jan 15, 2026, 13:30 CET" in listing
    assert "times in Europe/Berlin" in html


@pytest.mark.parametrize(
    ("address", "written"),
    [
        ({"country": "GB", "city": "London", "postal_code": "N1 9GU"}, "LONDON<br>N1 9GU<br>UNITED KINGDOM"),
        (
            {"country": "US", "city": "Springfield, IL", "postal_code": "62701"},
            "SPRINGFIELD, IL 62701<br>UNITED STATES",
        ),
        ({"country": "DE", "city": "Berlin", "postal_code": "10115"}, "10115 BERLIN<br>GERMANY"),
    ],
)
def test_the_address_reads_as_its_country_writes_it(shopper, customer, place_order, address, written):
    order = place_order(customer, ProductFactory(), **address)

    html = shopper.get(f"/orders/{order.pk}/").content.decode()

    assert f"<address>Ada Lovelace<br>12 Analytical Row<br>{written}</address>" in html


def test_staff_notes_are_not_shown_to_the_customer(shopper, order):
    order_note_add(order_id=order.pk, actor="support", text="Customer phoned about the refund.")

    html = shopper.get(f"/orders/{order.pk}/").content.decode()

    assert "Customer phoned" not in html
    assert "You</strong> placed the order" in html


def test_my_orders_shows_the_short_number(shopper, order):
    html = shopper.get("/orders/").content.decode()

    assert f"#{str(order.pk)[:8]}<" in html
    assert 'class="table orders-table"' in html


def test_a_step_between_attempts_reads_as_retrying(shopper, order):
    SagaStep.objects.filter(saga_id=order.pk).filter(name="charge_payment").update(
        status="waiting", attempts=2, error="ProviderUnavailable"
    )

    response = shopper.get(f"/orders/{order.pk}/")

    assert response.status_code == 200
    assert 'data-state="retrying"' in response.content.decode()


def test_the_zone_is_named_once_when_its_name_is_its_abbreviation(shopper, order):
    html = shopper.get(f"/orders/{order.pk}/").content.decode()

    assert "times in UTC." in html


def history(html: str) -> str:
    start = html.index('<ol class="history-list">')
    return html[start : html.index("</ol>", start)]


def test_the_history_names_the_service_that_acted_and_the_page_the_coordination(shopper, order):
    # given a choreographed order that the payment service charged
    Order.objects.filter(pk=order.pk).update(coordination="choreography")
    OrderEvent.objects.create(
        order=order, service="payments", kind="event", name="payment.charged", message="amount: 25.00"
    )

    html = shopper.get(f"/orders/{order.pk}/").content.decode()

    assert '<strong class="journal-service">Payments</strong> took the payment' in html
    assert '<strong class="journal-service">You</strong> placed the order' in html
    assert "payment.charged" not in html
    assert "Each service acted on the others&#x27; news for this order, with no one directing" in html


def test_the_history_leaves_the_machinery_to_staff(shopper, order):
    # given the commands, retries and step failures underneath a declined charge
    for kind, name, message in [
        ("command", "payments.charge_payment", ""),
        ("retry", "charge_payment", "ProviderUnavailable; again in 0.5s"),
        ("step", "charge_payment", "failed: PaymentDeclined"),
        ("compensation", "release_stock", "succeeded"),
    ]:
        OrderEvent.objects.create(order=order, service="payments", kind=kind, name=name, message=message)
    OrderEvent.objects.create(
        order=order, service="inventory", kind="step", name="reserve_stock", message="succeeded for every line"
    )

    lines = history(shopper.get(f"/orders/{order.pk}/").content.decode())

    # then the customer reads who did the work and the compensation, not the commands, retries
    # or failures
    assert '<strong class="journal-service">Inventory</strong> set your items aside' in lines
    assert '<strong class="journal-service">Payments</strong> put your items back on the shelf' in lines
    assert 'data-kind="command"' not in lines and "ProviderUnavailable" not in lines
    assert "failed: PaymentDeclined" not in lines


def test_the_live_update_keeps_the_services_and_leaves_out_staff_notes(shopper, order):
    order_note_add(order_id=order.pk, actor="support", text="Customer phoned about the refund.")
    OrderEvent.objects.create(order=order, service="inventory", kind="event", name="stock.reserved")

    html = shopper.get(f"/orders/{order.pk}/live/").content.decode()

    assert '<strong class="journal-service">Inventory</strong> set your items aside' in html
    assert "Customer phoned" not in html
