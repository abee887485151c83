"""Order writes: placing, cancelling, the saga's own bookkeeping steps, recovery."""

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.api import Conflict
from core.bounds import decimal_column_max
from core.errors import ErrorCode
from core.remote import RequestInFlight
from core.together import together
from orders import coordination
from orders.journal import order_record_action
from orders.models import FORWARD_STATUSES, ActorKind, Coordination, Order, OrderLine, Reason, Status
from orders.plan import FORWARD_PATH, FORWARD_RANK, HELD_STATUSES, ORDER_SAGA
from orders.reconciliation import order_ledger_mismatches
from orders.selectors import order_as_placed, stalled_candidates, stalled_long_enough
from orders.transitions import order_transition
from payments.providers import ProviderTimeout, ProviderUnavailable
from sagas.models import SagaStep
from sagas.runtime import NotYetDone
from shop.selectors import products_by_sku

logger = logging.getLogger(__name__)


MAX_LINE_QUANTITY = 100  # contract §3: 1..100 units per line


class ActionRefused(Exception):
    """A staff action that does not apply to the order's state (the admin says why). Not an API
    error: the API's cancel answers ``Conflict``, and no endpoint retries, so it has no code of
    ``core.errors``."""


@dataclass(frozen=True)
class OrderItem:
    sku: str
    quantity: int


def order_place(
    *,
    user: User,
    items: list[OrderItem],
    shipping_address: dict[str, Any],
    payment_token: str,
    coordination_mode: Coordination | None = None,
) -> Order:
    """Create a ``pending`` order priced from the catalog and start its saga once it commits.

    ``coordination_mode`` picks how its saga runs (default: ``ORDER_COORDINATION``).
    Raises ``ValidationError`` (nothing is created) for an empty order, a SKU twice, an
    unknown SKU, a quantity outside 1..``MAX_LINE_QUANTITY`` or a total above
    ``order_total_limit()``. Side effects: the order, its lines and its planned saga steps;
    after commit, the saga's first messages. Compensation: ``order_cancel``.
    """
    if not items:
        raise ValidationError({"items": ValidationError("An order needs at least one item.", code="empty")})
    skus = [item.sku for item in items]
    if len(set(skus)) != len(skus):
        raise ValidationError(
            {"items": ValidationError("Each SKU may appear only once; combine the quantities.", code="duplicate_sku")}
        )
    products = products_by_sku(skus)
    unknown = [sku for sku in skus if sku not in products]
    if unknown:
        raise ValidationError(
            {"items": [ValidationError(f"Unknown SKU: {sku}.", code="unknown_sku") for sku in unknown]}
        )
    total = _order_total_check(items, {sku: product.price for sku, product in products.items()})
    with transaction.atomic(), together():  # its journal lines and messages: one INSERT each
        order = Order.objects.create(
            user=user,
            total=total,
            shipping_address=shipping_address,
            payment_token=payment_token,
            coordination=coordination_mode or coordination.default_coordination(),
        )
        lines = OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                product=products[item.sku],
                sku=item.sku,
                name=products[item.sku].name,
                quantity=item.quantity,
                unit_price=products[item.sku].price,
            )
            for item in items
        )
        step_names = ORDER_SAGA.step_names([line.sku for line in lines])
        steps = SagaStep.objects.bulk_create(
            SagaStep(saga_id=order.pk, name=name, position=position) for position, name in enumerate(step_names)
        )
        order_record_action(
            order=order,
            actor=_username(user),
            actor_kind=ActorKind.CUSTOMER,
            message=f"Order placed ({order.coordination})",
        )
        coordination.saga_start(order, lines)
    return order_as_placed(order, lines=lines, steps=steps)


def order_total_limit() -> Decimal:
    """The most one order may cost: ``ORDER_MAX_TOTAL``, and never more than ``Order.total`` holds
    (the system check of ``orders/checks.py`` refuses a setting above it)."""
    return min(settings.ORDER_MAX_TOTAL, decimal_column_max(Order, "total"))


def _order_total_check(items: list[OrderItem], prices: dict[str, Decimal]) -> Decimal:
    """The order's total, once every quantity and the total are known to fit what the shop takes
    and the database holds. A unit price is a catalog price, whose column is the size of the
    line's; each line's total is at most the order's, so bounding the order bounds every line."""
    out_of_range = [item for item in items if not 1 <= item.quantity <= MAX_LINE_QUANTITY]
    if out_of_range:
        raise ValidationError(
            {
                "items": [
                    ValidationError(
                        f"{item.sku}: order 1 to {MAX_LINE_QUANTITY} units, not {item.quantity}.",
                        code="quantity_out_of_range",
                    )
                    for item in out_of_range
                ]
            }
        )
    total = sum((prices[item.sku] * item.quantity for item in items), Decimal("0"))
    limit = order_total_limit()
    if total > limit:
        raise ValidationError(
            {
                "items": ValidationError(
                    f"This order comes to {total:,.2f} {settings.SHOP_CURRENCY}; one order may cost at most "
                    f"{limit:,.2f} {settings.SHOP_CURRENCY}. Order fewer units or split it into several orders.",
                    code="order_total_too_large",
                )
            }
        )
    return total


def order_cancel(*, order_id: Any, actor: str, reason: Reason = Reason.CUSTOMER_REQUEST) -> Order:
    """Stop the order's saga and undo whatever it did; the order ends ``cancelled``.

    Idempotent: cancelling an order that is already being cancelled changes nothing. Raises
    ``Conflict`` for an order that is ``completed`` or waits for staff (``needs_attention``).
    """
    with transaction.atomic():
        order = Order.objects.lock(order_id)
        if order.status in (Status.COMPENSATING, Status.CANCELLED):
            return order
        if order.status not in FORWARD_STATUSES:
            raise Conflict(
                f"An order that is {order.status} cannot be cancelled.", code=ErrorCode.ORDER_NOT_CANCELLABLE
            )
        kind = ActorKind.STAFF if reason == Reason.STAFF_REQUEST else ActorKind.CUSTOMER
        order_transition(
            order=order, to=Status.COMPENSATING, reason=reason, actor=actor, actor_kind=kind, message="Cancelled"
        )
        coordination.compensation_start(order)
    return order


def order_advance(*, order_id: Any, to: Status, message: str) -> None:
    """Move a choreographed order on to ``to`` because a step's event says it is done.

    Events can arrive out of order (a copy redelivered, two queues): the order only ever moves
    forward, through each status between, and not at all once it has turned back (a cancel
    that came first wins; the services undo the step). Side effect: reaching ``completed``
    announces it (``orders/events.py``).

    Inside the event handler's transaction (with its inbox entry) it adds no savepoint: an
    error here fails the handler's transaction whole, as it should (two statements fewer).
    """
    with transaction.atomic(savepoint=False):
        order = Order.objects.lock(order_id)
        _advance(order, to, message)


def _advance(order: Order, to: Status, message: str) -> None:
    if order.status not in FORWARD_STATUSES:
        return
    # Through each status between (not into one held for a decision: its step is done).
    now, target = FORWARD_RANK[order.status], FORWARD_RANK[to]
    for status in FORWARD_PATH:
        if now < FORWARD_RANK[status] <= target and status not in HELD_STATUSES:
            order_transition(order=order, to=Status(status), message=message)


def order_finish_compensation(*, order_id: Any) -> None:
    """``compensating`` → ``cancelled`` when every compensation succeeded (or had nothing to
    undo) and the providers' ledgers agree (no money held, no live parcel), → ``needs_attention``
    when one gave up or they do not. Raises ``NotYetDone`` while one still runs, or while a
    provider still works on one of the order's requests.
    """
    with transaction.atomic():
        order = Order.objects.lock(order_id)
        if order.status != Status.COMPENSATING:
            return
        compensations = list(SagaStep.objects.filter(saga_id=order.pk, kind=SagaStep.Kind.COMPENSATION))
        settling = (SagaStep.Status.PENDING, SagaStep.Status.RUNNING, SagaStep.Status.WAITING)
        if any(step.status in settling for step in compensations):
            raise NotYetDone("compensations are still running")
        failed = [step.name for step in compensations if step.status == SagaStep.Status.FAILED]
        if failed:
            order_transition(
                order=order, to=Status.NEEDS_ATTENTION, message=f"Compensation gave up: {', '.join(failed)}"
            )
            return
        try:
            mismatches = order_ledger_mismatches(order)
        except RequestInFlight as exc:
            raise NotYetDone("a provider is still working on one of the order's requests") from exc
        except (ProviderUnavailable, ProviderTimeout) as exc:  # a remote provider's ledger, out of reach
            raise NotYetDone(f"the payment provider's ledger cannot be read now: {exc}") from exc
        if mismatches:
            # The rows say every step was undone, the providers say otherwise: they are right.
            problems = "; ".join(m.detail for m in mismatches)
            order_transition(order=order, to=Status.NEEDS_ATTENTION, message=f"Not everything was undone: {problems}")
        else:
            order_transition(order=order, to=Status.CANCELLED, message="Every completed step was undone")


def order_retry_saga(*, order_id: Any, actor: str) -> Order:
    """Staff action: drive a stuck saga on from its recorded state. Raises ``ActionRefused`` for an
    order whose saga has ended (``needs_attention``: its compensation is retried instead)."""
    with transaction.atomic():
        order = Order.objects.lock(order_id)
        if order.status == Status.NEEDS_ATTENTION:
            raise ActionRefused("A compensation gave up on this order: retry the compensation instead.")
        if order.is_terminal:
            raise ActionRefused(f"The saga of a {order.status} order has ended.")
        order_record_action(order=order, actor=actor, actor_kind=ActorKind.STAFF, message="Saga retried")
        _redrive(order)
    return order


def order_retry_compensation(*, order_id: Any, actor: str) -> Order:
    """Staff action: undo again, from what the providers hold, whatever the rows' last word.

    Every compensation runs again (each asks its provider what it holds for the order and takes
    back whatever is there; one with nothing to undo is skipped), and the order ends
    ``cancelled`` only if the providers' ledgers then add up (``order_finish_compensation``),
    else ``needs_attention`` again. Raises ``ActionRefused`` unless the order needs attention.
    """
    with transaction.atomic():
        order = Order.objects.lock(order_id)
        if order.status != Status.NEEDS_ATTENTION:
            raise ActionRefused("Only an order that needs attention has a compensation to retry.")
        order_transition(
            order=order, to=Status.COMPENSATING, actor=actor, actor_kind=ActorKind.STAFF, message="Compensation retried"
        )
        SagaStep.objects.filter(saga_id=order.pk, kind=SagaStep.Kind.COMPENSATION).update(
            status=SagaStep.Status.PENDING, error="", finished_at=None
        )
        coordination.compensation_start(order)
    return order


@dataclass
class RecoveryReport:
    redriven: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


def saga_recover_stalled(*, limit: int = 500) -> RecoveryReport:
    """Re-drive every saga that has made no progress for ``SAGA_STALL_SECONDS``.

    The database, not the broker, says where each saga stands, so this recovers sagas whose
    messages were lost, whose worker died or whose error callback never ran. Each order is
    claimed under its row lock by moving ``progressed_at``, so concurrent sweepers re-drive it
    once; re-driving is safe anyway, since every step is idempotent. A saga that is only slow
    (a long queue) would be re-driven again and again, adding to the queue; so each re-drive
    doubles the wait before the next one. Orders ``pending`` for longer than
    ``ORDER_PENDING_EXPIRY_SECONDS`` are cancelled as ``expired`` instead. A saga with a step
    held for a person's decision is not stalled: it waits for the decision (or its deadline).
    """
    now = timezone.now()

    expired_before = now - timedelta(seconds=settings.ORDER_PENDING_EXPIRY_SECONDS)
    report = RecoveryReport()
    candidates = stalled_candidates(now=now).values_list("pk", flat=True)[:limit]
    for order_id in list(candidates):
        with transaction.atomic():
            order = Order.objects.select_for_update(skip_locked=True).filter(pk=order_id).first()
            if order is None or not stalled_long_enough(order, now=now):
                continue  # another sweeper or a step got there first, or it is backing off
            _catch_up(order)
            if order.status == Status.PENDING and order.created_at < expired_before:
                order_transition(
                    order=order, to=Status.COMPENSATING, reason=Reason.EXPIRED, message="Pending for too long"
                )
                coordination.compensation_start(order)
                report.expired.append(str(order.pk))
                continue
            order_record_action(order=order, actor="sweeper", message=f"Re-driven after no progress ({order.status})")
            _redrive(order)
            report.redriven.append(str(order.pk))
    return report


def _catch_up(order: Order) -> None:
    """A choreographed order whose events were lost catches up with its steps: its status
    follows from the steps that succeeded (before it could be taken for stalled, or expired)."""
    if order.coordination == Coordination.CHOREOGRAPHY and order.status in FORWARD_STATUSES:
        _advance(order, _status_from_steps(order), "caught up with its steps")


def _redrive(order: Order) -> None:
    """Claim the order (moves ``progressed_at``) and resend what is left of its saga."""
    order.progressed_at = timezone.now()
    order.saga_moved = True
    order.recoveries += 1
    order.save(update_fields=["progressed_at", "saga_moved", "recoveries"])
    _catch_up(order)
    if order.status == Status.COMPLETED:
        return
    if order.status == Status.COMPENSATING:
        coordination.compensation_start(order)
    else:
        coordination.saga_resume(order)


def _status_from_steps(order: Order) -> Status:
    """How far the order's steps got: the furthest status every earlier step has reached."""
    steps = SagaStep.objects.filter(saga_id=order.pk, kind=SagaStep.Kind.FORWARD)
    done = {s.name.partition(":")[0]: True for s in steps}
    for s in steps:
        done[s.name.partition(":")[0]] &= s.status == SagaStep.Status.SUCCEEDED
    reached = Status.PENDING
    for step in ORDER_SAGA.steps:
        if not done.get(step.name):
            break
        reached = Status(step.advances_to or reached)
    return reached


def _username(user: User) -> str:
    return user.get_username()
