"""Issue 34: money (or a parcel) that lands after its step was given up is always given back.

Each test holds one provider request up on its way, before the provider sees it, for longer
than the step's lease (``SIMULATED_NETWORK_DELAY_SECONDS``: a network stall). Whoever asks the
provider meanwhile finds nothing, so the compensation settles the step as never done and the
order is cancelled; then the request lands and charges (or ships). Real worker, both modes.
"""

import time
from decimal import Decimal

import pytest

from orders.models import Order, OrderEvent, Status
from orders.services import order_retry_compensation, saga_recover_stalled
from payments.models import ProviderTransaction
from sagas.models import SagaStep
from shipping.models import CarrierShipment
from tests import provider
from tests.factories import ProductFactory, order_body, post_order
from tests.worker import (
    assert_invariants,
    money_moved,
    recover_until_terminal,
    wait_for_step,
    wait_for_terminal,
    wait_until,
)

pytestmark = pytest.mark.saga

DELAY = 3.0  # longer than the lease below: the request lands after its step was given up
LEASE = 1.0


def held_up(*services: str, delay: float = DELAY, **env: str) -> dict[str, str]:
    return {
        "SIMULATED_NETWORK_DELAY_SECONDS": str(delay),
        "SIMULATED_NETWORK_DELAY_SERVICES": ",".join(services),
        "SAGA_STEP_LEASE_SECONDS": str(LEASE),
    } | env


def landed(order_id: str, step: str) -> bool:
    """Whether the journal says the step's success landed after the order turned back."""
    return OrderEvent.objects.filter(order_id=order_id, name=step, message__contains="landed after").exists()


def cancelled_for_good(order_id: str) -> Order:
    """Once the late success landed, until the order has ended again."""
    wait_until(lambda: landed(order_id, "charge_payment"), timeout=30, what="the late charge")
    return wait_for_terminal([order_id], timeout=60)[order_id]


@provider.HELD_UP
def test_a_charge_that_lands_after_the_order_was_cancelled_is_refunded(special_worker, api):
    # given a charge request held up on its way for longer than its lease
    special_worker(env=held_up("payments.charge"))
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token="tok_visa"))
    wait_for_step(order_id, "charge_payment", "running")

    # when the customer cancels, the refund finds nothing at the provider and the order ends
    assert api.post(f"/api/orders/{order_id}/cancel/").status_code == 202
    first = wait_for_terminal([order_id], timeout=30)[order_id]
    assert first.status == Status.CANCELLED
    assert money_moved(first) == ([], Decimal("0"))

    # then the charge lands, is written down, and the order compensates again until refunded
    order = cancelled_for_good(order_id)
    assert (order.status, order.cancellation_reason) == (Status.CANCELLED, "customer_request")
    charges, refunded = money_moved(order)
    assert charges == [order.total]
    assert refunded == order.total
    statuses = list(OrderEvent.objects.filter(order_id=order_id, kind="status").values_list("name", flat=True))
    assert statuses[-2:] == ["compensating", "cancelled"]  # it said so while it was refunding
    assert statuses.count("cancelled") == 2
    assert_invariants([order], {product.sku: 5})


@provider.HELD_UP
def test_a_late_charge_is_refunded_even_when_the_worker_dies_during_the_refund(special_worker, api, settings):
    # given a late charge whose refund request is itself held up on its way
    worker = special_worker(env=held_up("payments.charge", "payments.refund"))
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token="tok_visa"))
    wait_for_step(order_id, "charge_payment", "running")
    api.post(f"/api/orders/{order_id}/cancel/")
    wait_until(lambda: landed(order_id, "charge_payment"), timeout=DELAY + 20, what="the late charge")
    refund = SagaStep.objects.filter(saga_id=order_id, name="refund_payment", status="running", attempts__gte=2)
    wait_until(refund.exists, timeout=20, what="the refund of the late charge")

    # when the worker is killed while that refund is under way, and comes back
    worker.kill()
    assert not ProviderTransaction.objects.filter(order_ref=order_id, kind="refund").exists()
    worker.start()
    settings.SAGA_STALL_SECONDS = 0.5
    order = recover_until_terminal([order_id], timeout=60)[order_id]

    # then the refund written down before the kill was finished by the restarted worker
    assert order.status == Status.CANCELLED
    charges, refunded = money_moved(order)
    assert charges == [order.total]
    assert refunded == order.total
    assert_invariants([order], {product.sku: 5})


def test_a_shipment_that_lands_after_the_order_was_cancelled_is_cancelled_at_the_carrier(special_worker, api):
    # given a shipment request held up on its way for longer than its lease
    special_worker(env=held_up("shipping.create"))
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token="tok_visa"))
    wait_for_step(order_id, "create_shipment", "running")

    # when the customer cancels before the carrier has heard of it
    api.post(f"/api/orders/{order_id}/cancel/")
    assert wait_for_terminal([order_id], timeout=30)[order_id].status == Status.CANCELLED

    # then the parcel that lands later is cancelled at the carrier, and the money given back
    wait_until(lambda: landed(order_id, "create_shipment"), timeout=DELAY + 20, what="the late shipment")
    order = wait_for_terminal([order_id], timeout=60)[order_id]
    assert order.status == Status.CANCELLED
    at_carrier = CarrierShipment.objects.filter(idempotency_key=f"order:{order_id}:shipment")
    assert [s.status for s in at_carrier] == [CarrierShipment.Status.CANCELLED]
    assert_invariants([order], {product.sku: 5})


@provider.FLAKY
def test_a_late_success_on_a_step_waiting_for_its_retry_is_refunded(special_worker, api, settings):
    # given tok_flaky (the provider fails its first two calls), attempt 1 held up on its way,
    # and two re-drives whose attempts reach the provider first, fail, and leave the step waiting
    # (attempt 1 is held up long enough for two re-drives past their leases and a cancel)
    special_worker(env=held_up("payments.charge", delay=6, SAGA_RETRY_BASE_SECONDS="60", SAGA_RETRY_MAX_SECONDS="60"))
    settings.SAGA_STALL_SECONDS = 0
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token="tok_flaky"))
    wait_for_step(order_id, "charge_payment", "running")
    for attempt in (2, 3):
        time.sleep(LEASE + 0.1)  # past the lease of the attempt that holds the step
        saga_recover_stalled()
        step = SagaStep.objects.filter(saga_id=order_id, name="charge_payment", status="waiting", attempts=attempt)
        wait_until(step.exists, timeout=10, what=f"attempt {attempt} to fail and wait")

    # when the customer cancels: the refund finds nothing, attempt 1 has not arrived yet
    api.post(f"/api/orders/{order_id}/cancel/")
    assert wait_for_terminal([order_id], timeout=30)[order_id].status == Status.CANCELLED

    # then attempt 1 lands (the provider's third call: it charges) and is refunded, not dropped
    order = cancelled_for_good(order_id)
    assert order.status == Status.CANCELLED
    charges, refunded = money_moved(order)
    assert charges == [order.total]
    assert refunded == order.total


@provider.REFUND_FAILS
def test_retry_compensation_never_closes_an_order_that_still_holds_money(special_worker, api, staff):
    # given a late charge whose refund fails for good: the order waits for staff
    special_worker(env=held_up("payments.charge"))
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token="tok_refund_fails"))
    wait_for_step(order_id, "charge_payment", "running")
    api.post(f"/api/orders/{order_id}/cancel/")
    wait_until(lambda: landed(order_id, "charge_payment"), timeout=DELAY + 20, what="the late charge")
    wait_until(
        lambda: Order.objects.get(pk=order_id).status == Status.NEEDS_ATTENTION, timeout=60, what="needs_attention"
    )

    # when staff retry the compensation while the provider still refuses every refund
    order_retry_compensation(order_id=order_id, actor=staff.username)
    order = wait_for_terminal([order_id], timeout=60)[order_id]

    # then the order is not closed as cancelled: the provider still holds the money
    assert order.status == Status.NEEDS_ATTENTION
    assert money_moved(order) == ([order.total], Decimal("0"))

    # and once the provider refunds again, the retry gives the money back and closes it
    ProviderTransaction.objects.filter(order_ref=order_id).update(token="tok_visa")
    order_retry_compensation(order_id=order_id, actor=staff.username)
    order = wait_for_terminal([order_id], timeout=60)[order_id]
    assert order.status == Status.CANCELLED
    assert money_moved(order) == ([order.total], order.total)
