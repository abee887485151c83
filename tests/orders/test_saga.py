"""The saga end to end: API → real broker → real worker → database, for every provider test value."""

import threading
from decimal import Decimal

import pytest
from django.db import connections
from rest_framework.test import APIClient

from accounts.services import user_token
from orders.models import Order, Status
from payments.models import Payment
from sagas.models import SagaStep
from shipping.models import Shipment
from shop.models import Product
from tests import provider
from tests.factories import ProductFactory, UserFactory, order_body, post_order
from tests.worker import assert_invariants, money_moved, wait_for_step, wait_for_terminal

pytestmark = pytest.mark.saga


@pytest.mark.parametrize(
    ("token", "postal_code", "status", "reason"),
    provider.token_params(
        [
            ("tok_visa", "N1 9GU", Status.COMPLETED, None),
            ("tok_mastercard_debit", "N1 9GU", Status.COMPLETED, None),
            ("tok_decline", "N1 9GU", Status.CANCELLED, "payment_declined"),
            ("tok_flaky", "N1 9GU", Status.COMPLETED, None),
            ("tok_timeout", "N1 9GU", Status.COMPLETED, None),
            ("tok_down", "N1 9GU", Status.CANCELLED, "payment_failed"),
            ("tok_refund_fails", "N1 9GU", Status.COMPLETED, None),
            ("tok_slow", "N1 9GU", Status.COMPLETED, None),
            ("tok_visa", "88888", Status.COMPLETED, None),
            ("tok_visa", "00000", Status.CANCELLED, "shipping_failed"),
            ("tok_visa", "99999", Status.COMPLETED, None),
            ("tok_refund_fails", "00000", Status.NEEDS_ATTENTION, "shipping_failed"),
        ]
    ),
)
def test_every_provider_test_value_ends_as_the_contract_says(saga, api, token, postal_code, status, reason):
    # given two products in stock
    mug, tee = ProductFactory(price=Decimal("12.50"), stock=10), ProductFactory(price=Decimal("7.25"), stock=10)
    initial = {mug.sku: 10, tee.sku: 10}

    # when a customer orders both with this token and postal code
    order_id = post_order(api, order_body(mug, tee, quantity=2, token=token, postal_code=postal_code))
    order = wait_for_terminal([order_id])[order_id]

    # then it ends in the stated status, and money and stock add up
    assert (order.status, order.cancellation_reason) == (status, reason)
    assert order.total == Decimal("39.50")
    assert_invariants([order], initial)
    charges, refunded = money_moved(order)
    body = api.get(f"/api/orders/{order_id}/").json()
    assert body["status"] == status
    if status == Status.COMPLETED:
        assert body["payment"] == {"status": "succeeded", "amount": "39.50", "refunded_amount": "0.00"}
        assert body["shipment"]["status"] == "created"
        assert body["shipment"]["tracking_number"]
        assert all(step["status"] == "succeeded" for step in body["steps"])
    if status == Status.NEEDS_ATTENTION:
        # stock released, the refund tried and failed: the money is still with the shop
        assert Product.objects.get(pk=mug.pk).stock == 10
        assert charges == [Decimal("39.50")]
        assert refunded == 0
        assert Payment.objects.get(order_id=order.pk).status == Payment.Status.REFUND_FAILED
        refund_step = next(s for s in body["steps"] if s["name"] == "refund_payment")
        assert refund_step["status"] == "failed"
        assert refund_step["attempts"] > 1
    if token == "tok_timeout":
        assert len(charges) == 1
        assert SagaStep.objects.filter(saga_id=order.pk).get(name="charge_payment").attempts == 2
    if postal_code == "00000" and token == "tok_visa":
        assert body["payment"]["status"] == "refunded"
        assert body["payment"]["refunded_amount"] == "39.50"
        assert Shipment.objects.get(order_id=order.pk).status == Shipment.Status.REJECTED


def test_one_short_line_cancels_the_order_and_puts_the_other_lines_back(saga, api):
    # given three products, one of which has fewer units than ordered
    a, b, short = ProductFactory(stock=10), ProductFactory(stock=10), ProductFactory(stock=1)

    # when an order asks for 2 of each
    order_id = post_order(api, order_body(a, b, short, quantity=2))
    order = wait_for_terminal([order_id])[order_id]

    # then it is cancelled for lack of stock and every product's stock is exactly as before
    assert (order.status, order.cancellation_reason) == (Status.CANCELLED, "out_of_stock")
    assert [Product.objects.get(pk=p.pk).stock for p in (a, b, short)] == [10, 10, 1]
    assert money_moved(order) == ([], Decimal("0"))


def test_sixteen_concurrent_buyers_for_the_last_five_units(saga):
    # given 5 units left and 16 customers
    product = ProductFactory(stock=5)
    clients = []
    for _ in range(16):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {user_token(user=UserFactory())}")
        clients.append(client)
    order_ids: list[str] = []
    start = threading.Barrier(len(clients))

    def buy(client: APIClient) -> None:
        try:
            start.wait()
            order_ids.append(post_order(client, order_body(product, quantity=1)))
        finally:
            connections.close_all()

    # when they all buy one unit at the same moment
    threads = [threading.Thread(target=buy, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    orders = wait_for_terminal(order_ids).values()

    # then exactly five get it, the rest are cancelled for lack of stock, and stock ends at 0
    statuses = sorted(o.status for o in orders)
    assert statuses.count(Status.COMPLETED) == 5
    assert statuses.count(Status.CANCELLED) == 11
    assert all(o.cancellation_reason == "out_of_stock" for o in orders if o.status == Status.CANCELLED)
    assert Product.objects.get(pk=product.pk).stock == 0
    assert_invariants(orders, {product.sku: 5})


@provider.SLOW
def test_customer_cancel_compensates_and_a_completed_order_cannot_be_cancelled(saga, api):
    product = ProductFactory(stock=10)
    # given a completed order
    done = post_order(api, order_body(product))
    wait_for_terminal([done])
    # when the customer tries to cancel it, then it is a conflict
    assert api.post(f"/api/orders/{done}/cancel/").status_code == 409

    # given an order the customer cancels while its stock is held and its charge is in flight
    # (a slow card: "straight after the POST" would race a saga that ends in a tenth of a second)
    cancelled = post_order(api, order_body(product, quantity=3, token="tok_slow"))
    wait_for_step(cancelled, "charge_payment", "running")
    response = api.post(f"/api/orders/{cancelled}/cancel/")
    assert response.status_code == 202
    order = wait_for_terminal([cancelled])[cancelled]

    # then it ends cancelled on request, with its units back and no money kept
    assert (order.status, order.cancellation_reason) == (Status.CANCELLED, "customer_request")
    assert_invariants([Order.objects.get(pk=done), order], {product.sku: 10})
    # and cancelling again changes nothing
    assert api.post(f"/api/orders/{cancelled}/cancel/").status_code == 202
