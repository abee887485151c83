"""Duplicate delivery, crashes and lost messages: the database brings every saga home."""

import time
from collections import Counter
from decimal import Decimal

import pytest
from django.db import transaction

from orders import events as order_events
from orders import saga as saga_canvas
from orders import tasks as order_tasks
from orders.coordination import PARTICIPANTS
from orders.models import TERMINAL_STATUSES, Order, Status
from outbox.relay import relay_due
from payments import tasks as payment_tasks
from sagas.models import SagaStep
from shipping import tasks as shipping_tasks
from shop import tasks as inventory_tasks
from shop.models import Product, StockReservation
from tests import provider
from tests.factories import ProductFactory, order_body, post_order
from tests.worker import assert_invariants, money_moved, purge_broker, recover_until_terminal, wait_for_terminal

pytestmark = pytest.mark.saga

# (token, postal code) → the status each order must end in
ENDINGS = [
    ("tok_visa", "N1 9GU", Status.COMPLETED),
    ("tok_flaky", "N1 9GU", Status.COMPLETED),
    ("tok_timeout", "N1 9GU", Status.COMPLETED),
    ("tok_decline", "N1 9GU", Status.CANCELLED),
    ("tok_down", "N1 9GU", Status.CANCELLED),
    ("tok_visa", "00000", Status.CANCELLED),
    ("tok_visa", "99999", Status.COMPLETED),
    ("tok_refund_fails", "00000", Status.NEEDS_ATTENTION),
]
MIX = provider.provider_mix(ENDINGS)  # a batch's: under Stripe, the tokens it has


def snapshot(order_id: str) -> tuple[object, ...]:
    order = Order.objects.get(pk=order_id)
    return (
        order.status,
        order.cancellation_reason,
        tuple(Product.objects.order_by("sku").values_list("sku", "stock")),
        money_moved(order),
        tuple((s.name, s.status, s.attempts) for s in order.saga_steps),
        tuple(StockReservation.objects.filter(order_id=order.pk).order_by("line_id").values_list("status", flat=True)),
    )


def run_every_task_again(order: Order) -> None:
    order_id = str(order.pk)
    lines = list(order.lines.order_by("id"))
    context = order_events.order_context(order, lines)
    for line in lines:
        one_line = context | {"lines": [{"line_id": line.pk, "sku": line.sku, "quantity": line.quantity}]}
        inventory_tasks.reserve_stock.apply(args=(order_id, one_line))
    payment_tasks.charge_payment.apply(args=(order_id, context))
    shipping_tasks.create_shipment.apply(args=(order_id, context))
    for task in (
        shipping_tasks.cancel_shipment,
        payment_tasks.refund_payment,
        inventory_tasks.release_stock,
        order_tasks.finish_compensation,
    ):
        task.apply(args=(order_id,))


@pytest.mark.parametrize(("token", "postal_code", "status"), provider.token_params(ENDINGS))
def test_running_any_step_or_compensation_again_changes_nothing(saga, api, token, postal_code, status):
    # given an order whose saga has ended
    product = ProductFactory(stock=10)
    order_id = post_order(api, order_body(product, quantity=2, token=token, postal_code=postal_code))
    order = wait_for_terminal([order_id])[order_id]
    assert order.status == status
    before = snapshot(order_id)

    # when every step and every compensation task is delivered once more
    run_every_task_again(order)

    # then nothing changed: no stock moved, no money moved, no step ran
    assert snapshot(order_id) == before


def test_every_saga_started_twice_still_has_the_effect_of_once(saga, api, coordination):
    # given products, and a batch of orders whose saga is started a second time at once:
    # its whole canvas sent again, or its "order placed" announced again to the services
    products = [ProductFactory(stock=40), ProductFactory(stock=40)]
    ids = [
        post_order(api, order_body(*products, quantity=1, token=token, postal_code=postal_code))
        for token, postal_code, _ in MIX * 2
    ]
    for order in Order.objects.filter(pk__in=ids):
        with transaction.atomic():
            lines = list(order.lines.order_by("id"))
            if coordination == "orchestration":
                saga_canvas.saga_send(order, lines, fresh=True)
            else:
                order_events.order_placed_announce(order, lines, only=PARTICIPANTS)

    # then every order ends as it would have, and money and stock add up
    orders = wait_for_terminal(ids)
    expected = Counter(status for _, _, status in MIX * 2)
    assert Counter(o.status for o in orders.values()) == expected
    assert_invariants(orders.values(), {p.sku: 40 for p in products})


def test_killing_the_worker_mid_saga_loses_no_order_and_charges_nobody_twice(saga, api, settings):
    # given a batch of sagas in flight
    products = [ProductFactory(stock=100), ProductFactory(stock=100)]
    ids = [
        post_order(api, order_body(*products, quantity=1, token=token, postal_code=postal_code))
        for token, postal_code, _ in MIX * 4
    ]
    deadline = time.monotonic() + 20
    while not SagaStep.objects.filter(saga_id__in=ids, status=SagaStep.Status.SUCCEEDED).exists():
        assert time.monotonic() < deadline, "no saga started"
        time.sleep(0.02)

    # when the worker and its pool are killed with SIGKILL, and a new worker starts
    saga.kill()
    in_flight = Order.objects.filter(pk__in=ids).exclude(status__in=TERMINAL_STATUSES).count()
    saga.start()

    # then the sweeper (what beat runs) re-drives what stalled, and every order ends
    settings.SAGA_STALL_SECONDS = 1
    orders = recover_until_terminal(ids)
    assert in_flight > 0, "the kill came too late to test anything"
    expected = Counter(status for _, _, status in MIX * 4)
    assert Counter(o.status for o in orders.values()) == expected
    assert_invariants(orders.values(), {p.sku: 100 for p in products})


def test_sagas_whose_messages_were_all_lost_are_recovered_from_the_database(saga, api, settings):
    # given orders placed while the worker is down, whose messages the relay publishes and the
    # broker then loses
    saga.stop()
    product = ProductFactory(stock=10)
    endings = {"tok_visa": Status.COMPLETED, "tok_decline": Status.CANCELLED, "tok_flaky": Status.COMPLETED}
    tokens = [token for token in endings if provider.has_token(token)]
    ids = [post_order(api, order_body(product, token=token)) for token in tokens]
    assert relay_due() == 2 * len(ids)  # each order: its saga (canvas or event) and its customer's email
    purge_broker()
    saga.start()
    time.sleep(0.5)
    assert set(Order.objects.filter(pk__in=ids).values_list("status", flat=True)) == {Status.PENDING}

    # when the sweeper runs
    settings.SAGA_STALL_SECONDS = 0
    orders = recover_until_terminal(ids)

    # then they complete or are cancelled as if nothing had happened
    assert sorted(o.status for o in orders.values()) == sorted(endings[token] for token in tokens)
    assert_invariants(orders.values(), {product.sku: 10})


def test_orders_pending_too_long_expire_and_release_everything(saga, api, settings):
    # given an order whose saga never got going (its messages were lost)
    saga.stop()
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, quantity=2))
    assert relay_due() == 2  # its saga (canvas or event) and its customer's email
    purge_broker()
    saga.start()

    # when the sweeper finds it pending past the expiry
    settings.SAGA_STALL_SECONDS = 0
    settings.ORDER_PENDING_EXPIRY_SECONDS = 0
    order = recover_until_terminal([order_id])[order_id]

    # then it is cancelled as expired and nothing is held
    assert (order.status, order.cancellation_reason) == (Status.CANCELLED, "expired")
    assert_invariants([order], {product.sku: 5})


def test_amounts_are_decimal_end_to_end(saga, api):
    product = ProductFactory(price=Decimal("0.10"), stock=50)
    order_id = post_order(api, order_body(product, quantity=3))
    order = wait_for_terminal([order_id])[order_id]
    assert order.total == Decimal("0.30")
    assert money_moved(order) == ([Decimal("0.30")], Decimal("0"))
