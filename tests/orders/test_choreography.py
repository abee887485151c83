"""Choreography without a worker: each service's handler called as the broker would call it,
in any order and more than once (the saga tests run the same with a real worker)."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import InboxEntry
from events.services import event_handle, events_handle_together
from orders.models import Coordination, Order, OrderEvent, Status
from orders.plan import ORDER_SAGA
from orders.services import order_advance, order_cancel, saga_recover_stalled
from outbox.models import OutboxMessage
from payments.providers import get_payment_provider
from sagas.models import SagaStep
from shop.models import Product
from tests import factories
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def place(customer, product: Product, token: str = "tok_visa") -> Order:
    return factories.place(customer, product, quantity=2, token=token, coordination=Coordination.CHOREOGRAPHY)


def deliveries(order: Order, event: str, service: str) -> list[dict[str, Any]]:
    """The outbox messages that deliver ``event`` of ``order`` to ``service``, oldest first."""
    rows = OutboxMessage.objects.filter(shard=str(order.pk), name=f"{service}.handle_event").order_by("id")
    return [row.message for row in rows if row.message["args"][1]["name"] == event]


def handle(message: dict[str, Any]) -> None:
    consumer, envelope, attempt = message["args"]
    event_handle(consumer=consumer, message=envelope, attempt=attempt)


def run_forward(order: Order) -> None:
    """Deliver each forward event to the service of the next step, as a broker would."""
    heard = ORDER_SAGA.starts_with
    for step in ORDER_SAGA.steps:
        handle(deliveries(order, heard, step.service)[-1])
        heard = step.succeeded


def test_a_redelivered_event_changes_nothing(customer):
    # given a choreographed order and its "order placed" delivered to inventory
    product = ProductFactory(stock=5)
    order = place(customer, product)
    placed = deliveries(order, "order.placed", "inventory")[0]
    handle(placed)

    # when the same delivery comes again
    handle(placed)

    # then the units were taken once and "stock reserved" was announced once
    assert Product.objects.get(pk=product.pk).stock == 3
    assert len(deliveries(order, "stock.reserved", "risk")) == 1
    assert InboxEntry.objects.filter(event_name="order.placed", consumer__startswith="inventory.").count() == 1


def test_the_orders_service_follows_the_events_even_out_of_order(customer):
    # given a choreographed order whose steps all ran
    order = place(customer, ProductFactory(stock=5))
    run_forward(order)
    assert Order.objects.get(pk=order.pk).status == Status.PENDING  # nobody told orders yet

    # when the orders service hears "shipment created" before the two events that came before it
    for event in ("shipment.created", "stock.reserved", "payment.charged"):
        handle(deliveries(order, event, "orders")[-1])

    # then the order went through every status once, in order, and the end was announced once
    statuses = OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.STATUS).order_by("id")
    assert [e.to_status for e in statuses] == [Status.RESERVED, Status.PAID, Status.COMPLETED]
    assert OrderEvent.objects.filter(order=order, kind="event", name="order.completed").count() == 1


def test_a_forward_event_that_arrives_after_a_cancel_does_nothing(customer):
    # given a choreographed order screened, cancelled before payments heard of it
    product = ProductFactory(stock=5)
    order = place(customer, product)
    handle(deliveries(order, "order.placed", "inventory")[0])
    handle(deliveries(order, "stock.reserved", "risk")[0])
    order_cancel(order_id=order.pk, actor="customer")

    # when "risk approved" reaches payments, late, and the cancel reaches every service
    handle(deliveries(order, "risk.approved", "payments")[0])
    for service in ("inventory", "payments", "shipping"):
        handle(deliveries(order, "order.compensating", service)[0])
    for event in ("stock.released", "payment.refunded", "shipment.cancelled"):
        handle(deliveries(order, event, "orders")[0])

    # then nothing was charged, the stock is back, and the order is cancelled
    assert get_payment_provider().transactions(order_ref=str(order.pk)) == []
    assert Product.objects.get(pk=product.pk).stock == 5
    assert Order.objects.get(pk=order.pk).status == Status.CANCELLED
    charge = SagaStep.objects.get(saga_id=order.pk, name="charge_payment")
    assert (charge.status, charge.attempts) == ("pending", 0)


def test_the_sweeper_catches_an_order_up_with_its_steps_when_its_events_were_lost(customer, settings):
    # given a choreographed order whose steps all ran, and whose events to orders were all lost
    order = place(customer, ProductFactory(stock=5))
    run_forward(order)

    # when the sweeper finds it with no progress
    settings.SAGA_STALL_SECONDS = 0
    saga_recover_stalled()

    # then the order is completed from what its steps say, and the customer will hear of it
    order.refresh_from_db()
    assert order.status == Status.COMPLETED
    assert deliveries(order, "order.completed", "notifications")


def test_a_lagging_order_is_caught_up_not_expired(customer, settings):
    # given a choreographed order whose steps all ran long ago, its events to orders all lost
    order = place(customer, ProductFactory(stock=5))
    run_forward(order)

    # when the sweeper finds it pending past the expiry
    settings.SAGA_STALL_SECONDS = 0
    settings.ORDER_PENDING_EXPIRY_SECONDS = 0
    saga_recover_stalled()

    # then it is completed, as its steps say, not cancelled as expired
    assert Order.objects.get(pk=order.pk).status == Status.COMPLETED


def test_a_copy_of_a_compensation_that_is_running_does_nothing(customer):
    # given a choreographed order charged, then cancelled, whose refund a copy is running now
    order = place(customer, ProductFactory(stock=5))
    handle(deliveries(order, "order.placed", "inventory")[0])
    handle(deliveries(order, "stock.reserved", "risk")[0])
    handle(deliveries(order, "risk.approved", "payments")[0])
    order_cancel(order_id=order.pk, actor="customer")
    SagaStep.objects.filter(saga_id=order.pk, name="refund_payment").update(
        status=SagaStep.Status.RUNNING, attempts=1, started_at=timezone.now()
    )

    # when another copy of the cancel reaches payments
    handle(deliveries(order, "order.compensating", "payments")[0])

    # then it leaves the refund to the copy that owns it: no second call, no second attempt
    assert [e for e in get_payment_provider().transactions(order_ref=str(order.pk)) if e.kind == "refund"] == []
    refund = SagaStep.objects.get(saga_id=order.pk, name="refund_payment")
    assert (refund.status, refund.attempts) == ("running", 1)
    assert not deliveries(order, "payment.refunded", "orders")


def test_advancing_never_moves_an_order_that_turned_back(customer):
    order = place(customer, ProductFactory(stock=5))
    order_cancel(order_id=order.pk, actor="customer")

    order_advance(order_id=order.pk, to=Status.COMPLETED, message="late")

    assert Order.objects.get(pk=order.pk).status == Status.COMPENSATING


def test_a_handler_that_keeps_failing_is_parked_with_its_error(customer, settings, monkeypatch, caplog):
    # given the orders service's handler failing on something that is no business decision
    settings.EVENTS_MAX_ATTEMPTS = 2
    caplog.set_level("WARNING", logger="events.services")
    order = place(customer, ProductFactory(stock=5))
    run_forward(order)
    monkeypatch.setattr("orders.services.order_advance", boom)
    first = deliveries(order, "stock.reserved", "orders")[0]

    # when it is delivered, and delivered again each time it is scheduled again
    handle(first)
    handle(deliveries(order, "stock.reserved", "orders")[-1])
    handle(deliveries(order, "stock.reserved", "orders")[-1])

    # then it was tried three times in all and is parked, with its error, not retried again
    assert len(deliveries(order, "stock.reserved", "orders")) == 3
    parked = InboxEntry.objects.get(event_name="stock.reserved", consumer__startswith="orders.")
    assert parked.parked and "RuntimeError: the database of a neighbour" in parked.error
    assert parked.event["id"] == first["args"][1]["id"]
    assert Order.objects.get(pk=order.pk).status == Status.PENDING
    # and the log says so once per attempt: retries as warnings on one line, the parking as an error
    levels = [(r.levelname, r.exc_info is not None) for r in caplog.records if r.name == "events.services"]
    assert levels == [("WARNING", False), ("WARNING", False), ("ERROR", True)]


def boom(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("the database of a neighbour is on fire")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_saga_worker")
def test_the_orders_service_moves_an_order_on_in_its_handlers_transaction_alone(customer):
    # given a choreographed order whose stock was reserved
    order = place(customer, ProductFactory(stock=5))
    handle(deliveries(order, "order.placed", "inventory")[0])

    # when "stock reserved" reaches the orders service
    with CaptureQueriesContext(connection) as run:
        handle(deliveries(order, "stock.reserved", "orders")[0])

    # then the order moved on in the transaction of the handler's inbox entry, with no
    # savepoint inside it (two statements fewer per event)
    assert Order.objects.get(pk=order.pk).status == Status.RESERVED
    assert InboxEntry.objects.filter(event_name="stock.reserved", consumer__startswith="orders.").exists()
    verbs = [query["sql"].split()[0].upper() for query in run.captured_queries]
    assert "SAVEPOINT" not in verbs and "RELEASE" not in verbs, verbs


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_saga_worker")
def test_an_advance_that_fails_midway_leaves_nothing_behind_and_comes_again(customer, monkeypatch):
    # given a choreographed order whose stock was reserved, and the orders service failing
    # after it has written the new status (its announcement fails)
    order = place(customer, ProductFactory(stock=5))
    handle(deliveries(order, "order.placed", "inventory")[0])
    monkeypatch.setattr("orders.transitions.events.order_status_announce", boom)

    # when "stock reserved" reaches it
    handle(deliveries(order, "stock.reserved", "orders")[0])

    # then nothing of that run is left: the status, its journal line and the inbox entry went
    # back together, and the event is delivered again
    assert Order.objects.get(pk=order.pk).status == Status.PENDING
    assert not OrderEvent.objects.filter(order=order, to_status=Status.RESERVED).exists()
    assert not InboxEntry.objects.filter(event_name="stock.reserved", consumer__startswith="orders.").exists()
    assert len(deliveries(order, "stock.reserved", "orders")) == 2


def moves(order: Order) -> list[dict[str, Any]]:
    """The orders service's deliveries of an order whose steps all ran: its moves, in order."""
    run_forward(order)
    return [deliveries(order, step.succeeded, "orders")[0] for step in ORDER_SAGA.steps if step.advances_to]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_saga_worker")
def test_an_orders_moves_waiting_together_are_made_in_one_transaction(customer):
    # given a choreographed order whose steps all ran, its moves waiting for the orders service
    order = place(customer, ProductFactory(stock=5))
    waiting = moves(order)
    assert len(waiting) == 3

    # when they are handed over together
    with CaptureQueriesContext(connection) as run:
        assert events_handle_together(waiting) is True

    # then the order went through each status to completed, in one transaction with one inbox INSERT
    assert Order.objects.get(pk=order.pk).status == Status.COMPLETED
    statuses = OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.STATUS).order_by("created_at")
    assert list(statuses.values_list("to_status", flat=True)) == ["reserved", "paid", "completed"]
    assert InboxEntry.objects.filter(saga_id=order.pk, consumer__startswith="orders.").count() == 3
    verbs = [query["sql"].split()[0].upper() for query in run.captured_queries]
    inbox = [q for q in run.captured_queries if q["sql"].startswith('INSERT INTO "events_inboxentry"')]
    assert (verbs.count("BEGIN"), verbs.count("COMMIT"), len(inbox)) == (1, 1, 1), verbs
    # and each delivered again later changes nothing
    for message in waiting:
        handle(message)
    assert InboxEntry.objects.filter(saga_id=order.pk, consumer__startswith="orders.").count() == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_saga_worker")
def test_moves_that_cannot_all_be_made_together_are_not_made_at_all(customer, monkeypatch):
    # given a choreographed order's moves, the first of them handled already
    order = place(customer, ProductFactory(stock=5))
    waiting = moves(order)
    handle(waiting[0])

    # when all are handed over together, the copy handled already fails them all: nothing is written
    assert events_handle_together(waiting) is False
    assert Order.objects.get(pk=order.pk).status == Status.RESERVED
    assert InboxEntry.objects.filter(saga_id=order.pk, consumer__startswith="orders.").count() == 1

    # and so does a move that fails midway
    monkeypatch.setattr("orders.transitions.events.order_status_announce", boom)
    assert events_handle_together(waiting[1:]) is False
    assert Order.objects.get(pk=order.pk).status == Status.RESERVED
    assert InboxEntry.objects.filter(saga_id=order.pk, consumer__startswith="orders.").count() == 1


def test_only_one_bookkeeping_consumers_events_of_one_saga_go_together(customer):
    # given two orders' moves, and an order's emails (whose handler sends mail: never together)
    first, second = (place(customer, ProductFactory(stock=5)) for _ in range(2))
    first_moves, second_moves = moves(first), moves(second)
    emails = [
        row.message for row in OutboxMessage.objects.filter(shard=str(first.pk), name="notifications.handle_event")
    ]

    # then none of those mixes is taken, and nothing is written
    assert events_handle_together([first_moves[0], second_moves[0]]) is False
    assert emails and events_handle_together(emails * 2) is False
    assert not InboxEntry.objects.filter(consumer__startswith="orders.").exists()
    assert not InboxEntry.objects.filter(consumer__startswith="notifications.").exists()
