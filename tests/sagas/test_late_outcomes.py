"""Issue 9's scenarios, through the API with a real worker: a remote call is never assumed over
because a lease ran out, and no message depends on the broker being up at commit time."""

import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
from celery import current_app
from django.db import connections

from orders.models import Order, Status
from orders.services import order_retry_saga, saga_recover_stalled
from outbox.models import OutboxMessage
from sagas.models import SagaStep
from shipping.models import CarrierShipment
from shop.models import Product
from tests import provider
from tests.factories import ProductFactory, order_body, post_order
from tests.worker import WORKER_ENV, assert_invariants, money_moved, wait_for_step, wait_for_terminal

pytestmark = pytest.mark.saga


@provider.SLOW
def test_a_charge_that_lands_after_the_cancel_is_refunded(saga, api):
    # given a charge in flight that takes longer than the step's lease
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token="tok_slow"))
    wait_for_step(order_id, "charge_payment", "running")

    # when the customer cancels while it is in flight
    assert api.post(f"/api/orders/{order_id}/cancel/").status_code == 202
    order = wait_for_terminal([order_id], timeout=60)[order_id]

    # then the charge that landed after the cancel was refunded: the customer keeps their money
    assert (order.status, order.cancellation_reason) == (Status.CANCELLED, "customer_request")
    charges, refunded = money_moved(order)
    assert charges == [order.total]
    assert refunded == order.total
    assert SagaStep.objects.filter(saga_id=order.pk).get(name="charge_payment").status == SagaStep.Status.SUCCEEDED
    assert SagaStep.objects.filter(saga_id=order.pk).get(name="refund_payment").status == SagaStep.Status.SUCCEEDED
    assert_invariants([order], {product.sku: 5})


def test_a_shipment_that_lands_after_the_cancel_is_cancelled_at_the_carrier(saga, api):
    # given a shipment in flight that takes longer than the step's lease
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token="tok_visa", postal_code="88888"))
    wait_for_step(order_id, "create_shipment", "running")

    # when the customer cancels while it is in flight
    assert api.post(f"/api/orders/{order_id}/cancel/").status_code == 202
    order = wait_for_terminal([order_id], timeout=60)[order_id]

    # then no live shipment is left at the carrier, and the payment was refunded
    assert order.status == Status.CANCELLED
    at_carrier = CarrierShipment.objects.filter(idempotency_key=f"order:{order_id}:shipment")
    assert [s.status for s in at_carrier] == [CarrierShipment.Status.CANCELLED]
    assert_invariants([order], {product.sku: 5})


@provider.SLOW
def test_a_second_copy_of_a_step_in_flight_never_leaves_a_charge_behind(saga, api, staff, settings):
    # given a slow charge in flight, then a staff retry and a sweeper re-drive once its lease ran out
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token="tok_slow"))
    wait_for_step(order_id, "charge_payment", "running")
    order_retry_saga(order_id=order_id, actor=staff.username)
    time.sleep(float(WORKER_ENV["SAGA_STEP_LEASE_SECONDS"]) + 0.2)
    settings.SAGA_STALL_SECONDS = 0
    saga_recover_stalled()

    # when the customer cancels while the copies race
    api.post(f"/api/orders/{order_id}/cancel/")
    order = wait_for_terminal([order_id], timeout=60)[order_id]

    # then there was one charge, and it was refunded
    assert order.status == Status.CANCELLED
    charges, refunded = money_moved(order)
    assert charges == [order.total]
    assert refunded == order.total


@provider.DOWN
def test_a_cancel_during_a_retry_backoff_does_not_wait_for_a_lease(special_worker, api):
    # given a charge that failed once and waits a long backoff before its retry
    special_worker(
        env={"SAGA_RETRY_BASE_SECONDS": "30", "SAGA_RETRY_MAX_SECONDS": "30", "SAGA_STEP_LEASE_SECONDS": "60"}
    )
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token="tok_down"))
    wait_for_step(order_id, "charge_payment", "waiting")

    # when the customer cancels
    cancelled_at = time.monotonic()
    api.post(f"/api/orders/{order_id}/cancel/")
    order = wait_for_terminal([order_id], timeout=20)[order_id]

    # then the order is cancelled at once (not after the lease), and the retry never charges
    assert time.monotonic() - cancelled_at < 10
    assert (order.status, order.cancellation_reason) == (Status.CANCELLED, "customer_request")
    assert money_moved(order) == ([], Decimal("0"))


def test_orders_placed_while_the_broker_is_down_are_accepted_once_and_run_when_it_is_back(saga, api, customer):
    # given the broker out of reach of the web (a dead address) and no relay running
    saga.stop()
    product = ProductFactory(stock=5)
    broker_url = current_app.conf.broker_url
    current_app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        # when a client places an order with an Idempotency-Key and, not sure, sends it again
        body = order_body(product, token="tok_visa")
        started = time.monotonic()
        first = api.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="broker-down-1")
        replay = api.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="broker-down-1")
        took = time.monotonic() - started
    finally:
        current_app.conf.broker_url = broker_url

    # then both answers are the one order, at once, and its saga waits in the outbox
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert took < 2
    assert Order.objects.filter(user=customer).count() == 1
    # (the saga's first message, and the customer's "order placed" email)
    waiting = OutboxMessage.objects.filter(shard=first.json()["id"], sent_at__isnull=True)
    assert waiting.count() == 2
    assert waiting.filter(name="notifications.handle_event").count() == 1

    # and once a relay can reach the broker, the saga runs to its end
    saga.start()
    order = wait_for_terminal([first.json()["id"]])[first.json()["id"]]
    assert order.status == Status.COMPLETED
    assert_invariants([order], {product.sku: 5})


def test_staff_editing_a_product_while_orders_run_never_oversells(saga, api, staff_api):
    # given 30 units, and 45 one-unit orders placed while staff reprice the product again and again
    product = ProductFactory(stock=30, price=Decimal("10.00"))
    stop = threading.Event()
    edits: list[int] = []

    def reprice() -> None:
        try:
            cents = 1000
            while not stop.is_set():
                cents += 1
                response = staff_api.patch(
                    f"/api/products/{product.sku}/", {"price": f"{cents / 100:.2f}"}, format="json"
                )
                edits.append(response.status_code)
                time.sleep(0.01)
        finally:
            connections.close_all()

    editor = threading.Thread(target=reprice)
    editor.start()
    try:
        ids = [post_order(api, order_body(product, quantity=1, token="tok_visa")) for _ in range(45)]
        orders = wait_for_terminal(ids, timeout=120)
    finally:
        stop.set()
        editor.join()

    # then exactly the 30 units were sold: no edit gave reserved units back
    assert edits and set(edits) == {200}
    outcome = Counter(o.status for o in orders.values())
    assert outcome[Status.COMPLETED] == 30
    assert outcome[Status.CANCELLED] == 15
    assert Product.objects.get(pk=product.pk).stock == 0
    assert_invariants(orders.values(), {product.sku: 30})
