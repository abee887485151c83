"""The providers' ledgers against the orders: what the shop believes, checked against what the
payment provider and the carrier hold (contract §6).

The saga's rows are the shop's memory of what it asked for; the providers' ledgers are the
truth about money and parcels. They drift apart when a reply is lost, a request lands after
its step was given up, a worker dies between a provider's success and the commit that records
it, or a bug slips through. So every ended order is compared with them, again and again:

- a ``completed`` order holds exactly one succeeded charge for its total and no refund;
- a ``cancelled`` one holds refunds equal to its charges and no live shipment.

A cancelled order that still holds money or a live parcel is repaired by the saga's own rules:
the step is written down as done (``sagas.runtime.step_landed``) and its compensation runs
again, durably, as any other. What no rule can repair (two charges on a completed order, a
refund larger than the charge) is shown to staff: ``Order.ledger_mismatch``, a journal line, a
metric (``shop_orders_ledger_mismatch``) and a warning in the log. Each repair is counted too
(``Order.reconcile_repairs``, ``shop_reconciler_repairs_total``), with its journal lines and a warning.
"""

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.remote import RequestInFlight
from orders.journal import order_record_action
from orders.models import ActorKind, Order, OrderEvent, Status
from orders.plan import STEPS
from payments.providers import PaymentError
from payments.selectors import money_held
from sagas.runtime import step_landed
from shipping.selectors import shipment_live_at_carrier

logger = logging.getLogger(__name__)

RECONCILED = (Status.COMPLETED, Status.CANCELLED)
# The steps whose effect a provider holds (the saga's plan names them).
CHARGE_PAYMENT, CREATE_SHIPMENT = STEPS["charge_payment"].name, STEPS["create_shipment"].name
SERVICE = "reconciler"


@dataclass(frozen=True)
class Mismatch:
    step: str  # the step whose effect the providers hold against the order's outcome
    detail: str
    repairable: bool  # the step's compensation takes it back


def order_ledger_mismatches(order: Order) -> list[Mismatch]:
    """What the providers hold for ``order`` that does not add up with its status (a
    ``completed`` one, or one that is or is about to be ``cancelled``); empty when it does.

    Raises ``RequestInFlight`` while a provider is still working on one of the order's
    requests: the answer is unknown yet.
    """
    held = money_held(order_id=order.pk)
    found: list[Mismatch] = []
    if order.status == Status.COMPLETED:
        if held.charges != (order.total,) or held.refunded:
            found.append(
                Mismatch(
                    CHARGE_PAYMENT,
                    f"the payment provider holds charges {_amounts(held.charges)} and refunds "
                    f"{held.refunded} for a completed order of {order.total}",
                    repairable=False,
                )
            )
        return found
    if held.net > 0:
        found.append(
            Mismatch(
                CHARGE_PAYMENT,
                f"the payment provider holds {held.net} not refunded (charges {_amounts(held.charges)}, "
                f"refunds {held.refunded})",
                repairable=True,
            )
        )
    elif held.net < 0:
        found.append(
            Mismatch(CHARGE_PAYMENT, f"refunds {held.refunded} exceed charges {_amounts(held.charges)}", False)
        )
    if shipment_live_at_carrier(order_id=order.pk):
        found.append(Mismatch(CREATE_SHIPMENT, "the carrier holds a live shipment", repairable=True))
    return found


def _amounts(amounts: tuple[Decimal, ...]) -> str:
    return "[" + ", ".join(str(a) for a in amounts) + "]"


@dataclass
class ReconcileReport:
    checked: int = 0
    repaired: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # a provider was still busy: next time


def orders_reconcile(*, limit: int | None = None, dry_run: bool = False) -> ReconcileReport:
    """Compare up to ``limit`` ended orders with the providers' ledgers; repair or flag each
    mismatch (see the module's docstring). Returns what it found.

    Bounded work per run: the orders never compared come first, then those compared longest
    ago, so that over successive runs every ended order is compared again. Safe to run twice at
    once: each order is taken under its row lock (``SKIP LOCKED``) and only if nobody compared
    it since it was chosen. ``dry_run`` reports without repairing, flagging or recording.
    Side effects per mismatch: as ``sagas.runtime.step_landed`` (the order compensating again)
    or ``Order.ledger_mismatch``, a journal line and a warning.
    """
    report = ReconcileReport()
    due = (
        Order.objects.filter(status__in=RECONCILED)
        .order_by(F("reconciled_at").asc(nulls_first=True), "progressed_at")
        .values_list("pk", "reconciled_at")[: limit or settings.RECONCILE_BATCH]
    )
    for order_id, seen_at in list(due):
        unchanged = Q(reconciled_at__isnull=True) if seen_at is None else Q(reconciled_at=seen_at)
        with transaction.atomic():
            order = Order.objects.select_for_update(skip_locked=True).filter(unchanged, pk=order_id).first()
            if order is None or order.status not in RECONCILED:
                continue  # another reconciler has it, or it moved on
            report.checked += 1
            try:
                mismatches = order_ledger_mismatches(order)
            except (RequestInFlight, PaymentError) as exc:
                # busy, out of reach, or refusing us (a remote provider): next time
                if not isinstance(exc, RequestInFlight):
                    logger.warning("Order %s could not be compared with the payment provider: %s", order.pk, exc)
                report.unknown.append(str(order.pk))
                continue
            if dry_run:
                if mismatches:
                    report.mismatched.append(str(order.pk))
                continue
            order.reconciled_at = timezone.now()
            if not mismatches:
                order.ledger_mismatch = ""  # it adds up (again: staff may have settled it by hand)
            order.save(update_fields=["reconciled_at", "ledger_mismatch"])
            if mismatches:
                _act_on(order, mismatches, report)
    return report


def _act_on(order: Order, mismatches: list[Mismatch], report: ReconcileReport) -> None:
    """Repair what the saga's own rules repair; flag the rest for staff. Under the order's lock."""
    message = "; ".join(m.detail for m in mismatches)
    logger.warning("Order %s does not add up with the providers' ledgers: %s", order.pk, message)
    if order.status == Status.CANCELLED and all(m.repairable for m in mismatches):
        Order.objects.filter(pk=order.pk).update(reconcile_repairs=F("reconcile_repairs") + 1)
        for mismatch in mismatches:
            detail = f"found by the reconciler: {mismatch.detail}"
            step_landed(saga_id=str(order.pk), step_name=mismatch.step, detail=detail)
        report.repaired.append(str(order.pk))
        return
    Order.objects.filter(pk=order.pk).update(ledger_mismatch=message[:500])
    order_record_action(
        order=order,
        actor=SERVICE,
        actor_kind=ActorKind.SYSTEM,
        service="orders",
        kind=OrderEvent.Kind.ACTION,
        name="ledger_mismatch",
        message=f"The providers' ledgers do not add up: {message}",
    )
    report.mismatched.append(str(order.pk))
