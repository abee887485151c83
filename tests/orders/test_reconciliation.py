"""The reconciler (contract §6): every ended order compared with the providers' own ledgers.

A mismatch is planted by hand at the simulated provider or carrier, as a late landing, a lost
reply or a bug would leave it; the reconciler repairs it by the saga's own rules (the order
compensates again, on the real worker) or flags it for staff.
"""

import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections

from orders.models import Order, OrderEvent, Status
from orders.reconciliation import orders_reconcile
from payments.models import ProviderTransaction
from shipping.models import CarrierShipment
from tests import provider
from tests.factories import ProductFactory, order_body, post_order
from tests.worker import assert_invariants, money_moved, wait_for_terminal, wait_until, wait_until_settled

pytestmark = pytest.mark.saga


def plant_charge(order_id: str, amount: Decimal, key: str = "planted") -> None:
    """A succeeded charge at the provider that the shop never recorded."""
    ProviderTransaction.objects.create(
        kind="charge", status="succeeded", amount=amount, currency="USD", reference=f"ch_{key}_{order_id[:8]}",
        idempotency_key=f"{key}:{order_id}", token="tok_visa", order_ref=order_id,
    )  # fmt: skip


def ended(order_ids: list[str]) -> dict[str, Order]:
    """Until the orders have ended and the worker is done with them (their emails hold the
    order's row lock a moment, and a reconciler passes over a locked order until next time)."""
    orders = wait_for_terminal(order_ids)
    wait_until_settled()
    return orders


def reconcile_command(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("reconcile", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


@provider.FORGED_LEDGER
def test_a_clean_run_finds_nothing_and_a_planted_charge_on_a_cancelled_order_is_refunded(saga, api):
    # given a completed order and a declined one, as the saga left them
    product = ProductFactory(stock=5)
    done = post_order(api, order_body(product, token="tok_visa"))
    declined = post_order(api, order_body(product, token="tok_decline"))
    orders = ended([done, declined])
    assert orders[declined].status == Status.CANCELLED

    # when the reconciler runs on them, it finds nothing to say
    assert reconcile_command() == (0, "checked 2, repaired 0, flagged 0, unknown yet 0\n")

    # given a charge that lands at the provider for the cancelled order
    plant_charge(declined, Decimal("12.34"))

    # when the reconciler runs again (every order, not only those never compared)
    Order.objects.update(reconciled_at=None)
    report = orders_reconcile()

    # then it re-opens the refund, and the order ends cancelled with the money given back
    assert report.repaired == [declined]
    assert Order.objects.get(pk=declined).status == Status.COMPENSATING
    wait_until(lambda: Order.objects.get(pk=declined).status == Status.CANCELLED, timeout=30, what="the refund")
    order = Order.objects.get(pk=declined)
    assert order.cancellation_reason == "payment_declined"
    assert money_moved(order) == ([Decimal("12.34")], Decimal("12.34"))
    assert OrderEvent.objects.filter(order=order, message__contains="found by the reconciler").exists()
    assert order.reconcile_repairs == 1
    assert_invariants([order, Order.objects.get(pk=done)], {product.sku: 5})

    # and the next run finds both orders adding up
    wait_until_settled()
    Order.objects.update(reconciled_at=None)
    report = orders_reconcile()
    assert (report.checked, report.repaired, report.mismatched) == (2, [], [])


def test_a_live_parcel_for_a_cancelled_order_is_cancelled_at_the_carrier(saga, api):
    # given an order the carrier rejected, and then a live shipment at the carrier under its key
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token="tok_visa", postal_code="00000"))
    assert ended([order_id])[order_id].status == Status.CANCELLED
    CarrierShipment.objects.create(
        idempotency_key=f"order:{order_id}:shipment", tracking_number="SP000000000042", postal_code="00000"
    )

    # when the reconciler runs
    assert orders_reconcile().repaired == [order_id]

    # then the parcel is cancelled at the carrier and the order ends cancelled again
    wait_until(lambda: Order.objects.get(pk=order_id).status == Status.CANCELLED, timeout=30, what="the cancel")
    parcel = CarrierShipment.objects.get(idempotency_key=f"order:{order_id}:shipment")
    assert parcel.status == CarrierShipment.Status.CANCELLED


@provider.FORGED_LEDGER
def test_what_no_rule_repairs_is_flagged_for_staff(saga, api, staff_api):
    # given a completed order charged a second time at the provider
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token="tok_visa"))
    order = ended([order_id])[order_id]
    plant_charge(order_id, order.total, key="again")

    # when the reconciler runs as a command
    code, out = reconcile_command()

    # then it exits 1, the order stays completed, and staff see what does not add up
    assert code == 1
    assert f"flagged {order_id}" in out
    order.refresh_from_db()
    assert order.status == Status.COMPLETED
    assert "charges" in order.ledger_mismatch and str(order.total) in order.ledger_mismatch
    line = OrderEvent.objects.get(order=order, name="ledger_mismatch")
    assert "do not add up" in line.message
    metrics = staff_api.get("/metrics").content.decode()
    assert f'shop_orders_ledger_mismatch{{coordination="{order.coordination}"}} 1.0' in metrics

    # and once staff have settled it by hand, the next comparison clears the flag
    ProviderTransaction.objects.filter(idempotency_key=f"again:{order_id}").delete()
    Order.objects.update(reconciled_at=None)
    assert reconcile_command()[0] == 0
    order.refresh_from_db()
    assert order.ledger_mismatch == ""


@provider.FORGED_LEDGER
def test_a_dry_run_changes_nothing(saga, api):
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token="tok_decline"))
    ended([order_id])
    plant_charge(order_id, Decimal("5.00"))

    assert reconcile_command("--dry-run")[1].startswith("checked 1, repaired 0, flagged 1")

    order = Order.objects.get(pk=order_id)
    assert (order.status, order.reconciled_at, order.ledger_mismatch) == (Status.CANCELLED, None, "")


def test_each_run_is_bounded_and_the_orders_never_compared_come_first(saga, api):
    product = ProductFactory(stock=5)
    ids = [post_order(api, order_body(product, token="tok_visa")) for _ in range(3)]
    ended(ids)

    first, second = orders_reconcile(limit=2), orders_reconcile(limit=2)

    assert (first.checked, second.checked) == (2, 2)
    assert Order.objects.filter(reconciled_at__isnull=True).count() == 0


@provider.FORGED_LEDGER
def test_two_reconcilers_at_once_repair_an_order_once(saga, api):
    # given a cancelled order holding a planted charge
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token="tok_decline"))
    ended([order_id])
    plant_charge(order_id, Decimal("7.00"))

    # when two reconcilers run at the same moment
    barrier, reports = threading.Barrier(2), []

    def run() -> None:
        try:
            barrier.wait()
            reports.append(orders_reconcile())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then exactly one of them repaired it, and the money was given back once
    assert sorted(len(r.repaired) for r in reports) == [0, 1]
    wait_until(lambda: Order.objects.get(pk=order_id).status == Status.CANCELLED, timeout=30, what="the refund")
    assert money_moved(Order.objects.get(pk=order_id)) == ([Decimal("7.00")], Decimal("7.00"))
    found = OrderEvent.objects.filter(order_id=order_id, kind="step", message__contains="found by the reconciler")
    assert found.count() == 1
