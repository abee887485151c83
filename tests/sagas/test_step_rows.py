"""No row, no call: a remote step's participant has its row committed before it calls out.

The row is written in the transaction that claims the attempt (``run_step``'s ``prepare``), so
a crash mid-call leaves the row, and a compensation that finds no row knows nothing was called.
Run in process, with providers that look at the database when they are called.
"""

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from orders.models import Order, Status
from orders.plan import ORDER_SAGA
from orders.services import OrderItem, order_place
from payments import services as payment_services
from payments import steps as payment_steps
from payments.models import Payment
from payments.providers import Charge
from sagas.models import SagaStep
from sagas.runtime import run_step
from shipping import services as shipping_services
from shipping import steps as shipping_steps
from shipping.carriers import CarrierReceipt
from shipping.models import Shipment
from telemetry.context import fields_clear
from tests.factories import ProductFactory, address

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_saga_worker")]


@pytest.fixture(autouse=True)
def a_tasks_log_fields_end_with_it() -> Iterator[None]:
    """A step keeps its log fields for the rest of its task, and the worker clears them when the
    task ends (``config/celery.py``); run here, in the test's process, the test clears them."""
    yield
    fields_clear()


class Hops:
    """What the step sends next, kept here instead of written to the outbox."""

    retries = 0
    mode = "orchestration"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def record_success(self, saga: Any, step: Any, *, detail: str) -> None:
        pass  # a journal line, not a hop

    def send_next(self, saga: Any, result: dict[str, Any] | None = None) -> None:
        self.sent.append("next")

    def send_failed(self, saga: Any, step: Any, *, refused: bool, error: str) -> None:
        self.sent.append("failed")

    def send_again(self, *, delay: float, retries: int) -> None:
        self.sent.append("again")

    def send_held(self, saga: Any) -> None:
        self.sent.append("held")


def order_in(status: Status, customer: Any) -> str:
    """An orchestrated order whose saga has reached ``status``: the steps before it succeeded."""
    product = ProductFactory(stock=5)
    order = order_place(
        user=customer, items=[OrderItem(str(product.sku), 1)], shipping_address=address(), payment_token="tok_visa"
    )
    Order.objects.filter(pk=order.pk).update(status=status)
    # every step before the one that status waits for, in the plan's order
    names = [step.name for step in ORDER_SAGA.steps]
    next_step = {Status.PENDING: "reserve_stock", Status.RESERVED: "charge_payment", Status.PAID: "create_shipment"}
    done = {status: names[: names.index(step)] for status, step in next_step.items()}
    for name in done[status]:
        SagaStep.objects.filter(saga_id=order.pk, name__startswith=name).update(status=SagaStep.Status.SUCCEEDED)
    return str(order.pk)


def committed_and_outside_a_transaction(model: Any, order_id: str) -> tuple[bool, str]:
    """What the provider sees when it is called: no transaction of the step's is open (what it
    wrote is committed), and the participant's row, in its status."""
    row = model.objects.filter(order_id=order_id).first()
    return (not transaction.get_connection().in_atomic_block, row.status if row else "no row")


def test_the_payment_row_is_committed_before_the_provider_is_called(customer, monkeypatch):
    # given a reserved order and a provider that looks at the database when it is called
    order_id = order_in(Status.RESERVED, customer)
    seen: list[tuple[bool, str]] = []

    class Provider:
        def charge(self, **kwargs: Any) -> Charge:
            seen.append(committed_and_outside_a_transaction(Payment, order_id))
            return Charge(reference="ch_test", amount=Decimal("12.50"), currency="USD")

    monkeypatch.setattr(payment_services, "get_payment_provider", Provider)

    # when the payment service runs its step
    hops = Hops()
    payment_steps.charge(
        order_id=order_id, context={"total": "12.50", "currency": "USD", "payment_token": "tok_visa"}, hops=hops
    )

    # then the provider was called once, with the pending row already committed, and the step went on
    assert seen == [(True, Payment.Status.PENDING)]
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.SUCCEEDED
    assert hops.sent == ["next"]


def test_the_shipment_row_is_committed_before_the_carrier_is_called(customer, monkeypatch):
    order_id = order_in(Status.PAID, customer)
    seen: list[tuple[bool, str]] = []

    class Carrier:
        name = "TestPost"

        def create_shipment(self, **kwargs: Any) -> CarrierReceipt:
            seen.append(committed_and_outside_a_transaction(Shipment, order_id))
            return CarrierReceipt(carrier="TestPost", tracking_number="TP1")

    monkeypatch.setattr(shipping_services, "get_carrier", Carrier)

    hops = Hops()
    shipping_steps.ship(order_id=order_id, context={"shipping_address": address()}, hops=hops)

    assert seen == [(True, Shipment.Status.PENDING)]
    assert Shipment.objects.get(order_id=order_id).tracking_number == "TP1"
    assert hops.sent == ["next"]


class DyingHops(Hops):
    def send_next(self, saga: Any, result: dict[str, Any] | None = None) -> None:
        raise RuntimeError("the worker died while recording the step")


def test_the_providers_answer_is_written_with_the_steps_outcome_and_nothing_is_read_back(customer, monkeypatch):
    # given a reserved order and a provider that charges
    order_id = order_in(Status.RESERVED, customer)
    charge = Charge(reference="ch_test", amount=Decimal("12.50"), currency="USD")
    monkeypatch.setattr(
        payment_services, "get_payment_provider", lambda: type("P", (), {"charge": lambda *a, **k: charge})
    )
    context = {"total": "12.50", "currency": "USD", "payment_token": "tok_visa"}

    # when the transaction that records the charge's outcome fails
    with pytest.raises(RuntimeError):
        payment_steps.charge(order_id=order_id, context=context, hops=DyingHops())

    # then the payment does not say succeeded while its step is still running: both wait for the next attempt
    step = SagaStep.objects.get(saga_id=order_id, name="charge_payment")
    assert (step.status, step.attempts) == (SagaStep.Status.RUNNING, 1)
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.PENDING

    # and when that attempt runs, the payment's row is written once and never read: the provider has the answer
    SagaStep.objects.filter(pk=step.pk).update(status=SagaStep.Status.WAITING)
    table = Payment._meta.db_table
    with CaptureQueriesContext(connection) as charging:
        payment_steps.charge(order_id=order_id, context=context, hops=Hops())
    on_payments = [q["sql"].split(" ", 1)[0] for q in charging.captured_queries if f'"{table}"' in q["sql"]]
    assert on_payments == ["INSERT", "UPDATE"]
    assert Payment.objects.get(order_id=order_id).provider_reference == "ch_test"


def test_a_success_written_late_leaves_what_the_compensation_settled(customer):
    # given an order whose payment and shipment were given back while their calls were in flight
    order_id = order_in(Status.PAID, customer)
    payment_services.payment_open(order_id=order_id, amount=Decimal("12.50"))
    Payment.objects.filter(order_id=order_id).update(status=Payment.Status.REFUNDED, refunded_amount=Decimal("12.50"))
    shipping_services.shipment_open(order_id=order_id)
    Shipment.objects.filter(order_id=order_id).update(status=Shipment.Status.CANCELLED, tracking_number="TP1")

    # when the calls' successes are written down after that
    charge = Charge(reference="ch_late", amount=Decimal("12.50"), currency="USD")
    payment_services.payment_charged(order_id=order_id, charge=charge)
    shipping_services.shipment_created(
        order_id=order_id, receipt=CarrierReceipt(carrier="TestPost", tracking_number="TP1")
    )

    # then the rows still say what the compensation did (it takes a late success back: ``_landed_late``)
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.REFUNDED
    assert Shipment.objects.get(order_id=order_id).status == Shipment.Status.CANCELLED


def test_a_step_that_may_not_run_writes_no_row(customer, monkeypatch):
    # given an order still pending: the charge is not its turn
    order_id = order_in(Status.PENDING, customer)
    monkeypatch.setattr(payment_services, "get_payment_provider", lambda: pytest.fail("no call"))

    # when a stray charge command arrives, nothing is written and nothing is called
    payment_steps.charge(
        order_id=order_id, context={"total": "12.50", "currency": "USD", "payment_token": "tok_visa"}, hops=Hops()
    )

    assert not Payment.objects.filter(order_id=order_id).exists()


def two_line_order(customer: Any) -> tuple[str, list[str]]:
    """A pending orchestrated order of two lines: its reservation rows, in the plan's order."""
    products = [ProductFactory(stock=5), ProductFactory(stock=5)]
    items = [OrderItem(str(p.sku), 1) for p in products]
    order = order_place(user=customer, items=items, shipping_address=address(), payment_token="tok_visa")
    lines = [f"reserve_stock:{p.sku}" for p in products]
    return str(order.pk), lines


def test_a_steps_turn_is_asked_in_the_claim_itself(customer):
    # given a two-line order whose first line is reserved and whose second is not
    order_id, (first, second) = two_line_order(customer)
    SagaStep.objects.filter(saga_id=order_id, name=first).update(status=SagaStep.Status.SUCCEEDED)
    called: list[str] = []

    def step(name: str) -> bool:
        return run_step(saga_id=order_id, step_name=name, hops=Hops(), action=lambda: called.append(name))

    # when the screening comes before the second line: it is not its turn, so nothing runs
    assert step("screen_order") is False
    assert called == []
    assert SagaStep.objects.get(saga_id=order_id, name="screen_order").attempts == 0

    # and the second line runs beside the first (a per-line step's rows do not wait for each
    # other), with one statement on the step rows to find its turn and claim it, and no read
    table = SagaStep._meta.db_table
    with CaptureQueriesContext(connection) as claiming:
        assert step(second) is True
    on_steps = [q["sql"].split(" ", 1)[0] for q in claiming.captured_queries if table in q["sql"].split("WHERE")[0]]
    assert on_steps[0] == "UPDATE"  # the claim, with its turn: no read of the rows before it

    # then the screening's turn has come
    assert step("screen_order") is True
    assert called == [second, "screen_order"]


def test_a_local_steps_claim_is_its_success_and_tells_whether_other_lines_are_left(customer):
    # given a two-line order whose first line waits to be tried again after an error
    order_id, (first, second) = two_line_order(customer)
    SagaStep.objects.filter(saga_id=order_id, name=first).update(status=SagaStep.Status.WAITING, error="Busy: again")
    table = SagaStep._meta.db_table

    def reserve(name: str) -> tuple[list[str], list[str]]:
        hops = Hops()
        with CaptureQueriesContext(connection) as running:
            assert run_step(saga_id=order_id, step_name=name, hops=hops, action=lambda: None) is True
        on_steps = [q["sql"].split(" ", 1)[0] for q in running.captured_queries if table in q["sql"].split("WHERE")[0]]
        return on_steps, hops.sent

    # when each line runs, one statement on the step rows claims it, marks it succeeded and
    # answers whether the other line is still to succeed: the first line sends nothing on, the
    # second (the last) sends the next step
    assert reserve(first) == (["UPDATE"], [])
    assert reserve(second) == (["UPDATE"], ["next"])

    # then both rows say so, the earlier error cleared, each done at the moment of its claim
    for row in SagaStep.objects.filter(saga_id=order_id, name__in=[first, second]):
        assert (row.status, row.attempts, row.error) == (SagaStep.Status.SUCCEEDED, 1, "")
        assert row.finished_at == row.started_at


def test_a_local_step_that_fails_leaves_its_claim_undone(customer):
    # given a pending line
    order_id, (first, _) = two_line_order(customer)

    def fails() -> None:
        raise RuntimeError("the database went away mid-step")

    # when its action fails, the claim (which said succeeded) rolls back with it: the step waits for a retry
    assert run_step(saga_id=order_id, step_name=first, hops=Hops(), action=fails) is False
    row = SagaStep.objects.get(saga_id=order_id, name=first)
    assert (row.status, row.attempts) == (SagaStep.Status.WAITING, 0)
    assert "RuntimeError" in row.error
