from decimal import Decimal

import pytest
from django.utils import timezone

from orders.models import Order, OrderEvent, Status
from payments.models import Payment
from sagas.models import SagaStep
from shipping.models import Shipment
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(customer, place_order):
    return place_order(customer, ProductFactory(name="Enamel mug", price=Decimal("12.50")), quantity=2)


def test_my_orders_lists_only_my_orders(shopper, customer, place_order, order):
    # given an order of someone else
    other = place_order(UserFactory(), ProductFactory())

    # when I open my orders
    html = shopper.get("/orders/").content.decode()

    # then I see mine and not theirs
    assert f"/orders/{order.pk}/" in html
    assert f"/orders/{other.pk}/" not in html


def test_my_orders_shows_staff_their_own_orders_only(client, staff, place_order, order):
    client.force_login(staff)

    html = client.get("/orders/").content.decode()

    assert f"/orders/{order.pk}/" not in html
    assert "no orders yet" in html


def test_my_orders_needs_login(client):
    assert client.get("/orders/")["Location"] == "/accounts/login/?next=/orders/"


def test_order_page_shows_status_lines_and_the_planned_steps(shopper, order):
    response = shopper.get(f"/orders/{order.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Enamel mug" in html and "$25.00" in html
    assert 'data-testid="order-status">Received' in html
    assert "Reserve stock" in html and "Charge payment" in html and "Hand to the carrier" in html
    # still running: the live part polls for updates, and the order can be cancelled
    assert f'hx-get="/orders/{order.pk}/live/"' in html
    assert "Cancel order" in html


def test_a_finished_order_shows_payment_shipment_and_stops_polling(shopper, order):
    # given an order whose saga completed
    now = timezone.now()
    SagaStep.objects.filter(saga_id=order.pk).update(
        status=SagaStep.Status.SUCCEEDED, attempts=1, started_at=now, finished_at=now
    )
    Order.objects.filter(pk=order.pk).update(status=Status.COMPLETED)
    Payment.objects.create(order_id=order.pk, status="succeeded", amount=order.total, currency="USD")
    Shipment.objects.create(order_id=order.pk, status="created", carrier="SimPost", tracking_number="SP123456")

    # when its page is opened
    html = shopper.get(f"/orders/{order.pk}/").content.decode()

    # then it shows everything and neither polls nor offers to cancel
    assert 'data-testid="order-status">Shipped' in html
    assert "SP123456" in html and "SimPost" in html
    assert "Charged $25.00." in html and "With the carrier." in html
    assert 'data-state="done"' in html
    assert "hx-get" not in html
    assert "Cancel order" not in html


def test_a_compensated_order_shows_undone_steps(shopper, order):
    # given an order whose charge was refunded after the carrier rejected it
    now = timezone.now()
    SagaStep.objects.filter(saga_id=order.pk).update(status="succeeded", attempts=1, started_at=now, finished_at=now)
    SagaStep.objects.filter(saga_id=order.pk).filter(name="create_shipment").update(
        status="failed", error="AddressRejected: no such address"
    )
    for position, name in enumerate(["cancel_shipment", "refund_payment", "release_stock"], start=100):
        status = "skipped" if name == "cancel_shipment" else "succeeded"
        SagaStep.objects.create(saga_id=order.pk, name=name, kind="compensation", position=position, status=status)
    Order.objects.filter(pk=order.pk).update(status=Status.CANCELLED, cancellation_reason="shipping_failed")

    # when its page is opened
    html = shopper.get(f"/orders/{order.pk}/").content.decode()

    # then the undone steps read as compensated, the failure is explained
    assert 'data-state="compensated"' in html
    assert 'data-state="failed"' in html and "no such address" in html
    assert "Refund payment" in html and "Release stock" in html
    assert "The carrier could not accept the delivery address." in html
    assert html.count('data-state="skipped"') == 1  # the shipment to cancel


def test_steps_that_never_ran_read_as_skipped_once_the_order_has_ended(shopper, order):
    # given an order whose charge was declined: the shipment step never ran
    now = timezone.now()
    SagaStep.objects.filter(saga_id=order.pk).filter(name__regex="^(reserve_stock|screen_order)").update(
        status="succeeded", attempts=1, finished_at=now
    )
    SagaStep.objects.filter(saga_id=order.pk).filter(name="charge_payment").update(
        status="failed", attempts=1, error="PaymentDeclined: no"
    )
    for position, name in enumerate(["cancel_shipment", "refund_payment", "release_stock"], start=100):
        status = "succeeded" if name == "release_stock" else "skipped"
        SagaStep.objects.create(saga_id=order.pk, name=name, kind="compensation", position=position, status=status)
    Order.objects.filter(pk=order.pk).update(status=Status.CANCELLED, cancellation_reason="payment_declined")

    # when its page is opened
    html = shopper.get(f"/orders/{order.pk}/").content.decode()

    # then the step that never ran reads as skipped, not as waiting
    assert 'data-state="waiting"' not in html
    assert html.count('data-state="skipped"') == 3  # the shipment, and the two compensations with nothing to undo


def test_live_partial_is_the_changing_part_only(shopper, order):
    response = shopper.get(f"/orders/{order.pk}/live/")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="order-live"')
    assert "<html" not in html


def test_another_customers_order_is_not_found(client, order):
    client.force_login(UserFactory())

    assert client.get(f"/orders/{order.pk}/").status_code == 404
    assert client.get(f"/orders/{order.pk}/live/").status_code == 404
    assert client.post(f"/orders/{order.pk}/cancel/").status_code == 404
    assert Order.objects.get(pk=order.pk).status == Status.PENDING


def test_order_page_needs_login(client, order):
    assert client.get(f"/orders/{order.pk}/").status_code == 302


def test_cancelling_my_order_starts_compensation_and_is_recorded(shopper, customer, order):
    response = shopper.post(f"/orders/{order.pk}/cancel/", follow=True)

    order.refresh_from_db()
    assert order.status == Status.COMPENSATING
    assert order.cancellation_reason == "customer_request"
    assert OrderEvent.objects.filter(order=order, to_status="compensating", actor=customer.username).exists()
    assert "Cancelling" in response.content.decode()


def test_a_completed_order_cannot_be_cancelled(shopper, order):
    Order.objects.filter(pk=order.pk).update(status=Status.COMPLETED)

    response = shopper.post(f"/orders/{order.pk}/cancel/", follow=True)

    assert "cannot be cancelled" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.COMPLETED


def test_cancel_asks_for_confirmation_first(shopper, order):
    # when the customer follows "Cancel order" (a link, no JavaScript needed)
    page = shopper.get(f"/orders/{order.pk}/")
    confirm = shopper.get(f"/orders/{order.pk}/cancel/")

    # then a page asks them to confirm, and nothing is cancelled yet
    html = confirm.content.decode()
    assert f'href="/orders/{order.pk}/cancel/"' in page.content.decode()
    assert confirm.status_code == 200
    assert "Yes, cancel my order" in html and "No, keep my order" in html
    assert "refunded" in html  # what happens to their money
    assert Order.objects.get(pk=order.pk).status == Status.PENDING


def test_the_confirmation_of_an_order_that_can_no_longer_be_cancelled_goes_back(shopper, order):
    Order.objects.filter(pk=order.pk).update(status=Status.COMPLETED)

    response = shopper.get(f"/orders/{order.pk}/cancel/", follow=True)

    assert response.redirect_chain[-1][0] == f"/orders/{order.pk}/"
    assert "can no longer be cancelled" in response.content.decode()
