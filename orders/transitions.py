"""The order status machine: the one place an order's status changes."""

from django.utils import timezone

from core.together import insert
from orders import events
from orders.journal import journal_service
from orders.models import FORWARD_STATUSES, ActorKind, Order, OrderEvent, Reason, Status
from orders.plan import COMPENSATIONS, FORWARD_PATH, FORWARD_RANK, HELD_STATUSES
from sagas.models import SagaStep
from telemetry.context import current_trace_id


def _forward_moves(status: str) -> frozenset[str]:
    """From a status on the forward path (``orders/plan.py``): to the next one, or into a status
    held for a person's decision further on (in choreography the status may lag behind the
    steps), or back to undo."""
    later = [s for s in FORWARD_PATH if FORWARD_RANK[s] > FORWARD_RANK[status]]
    steady = [s for s in later if s not in HELD_STATUSES][:1]
    return frozenset({*steady, *(s for s in later if s in HELD_STATUSES), Status.COMPENSATING})


ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    **{status: _forward_moves(status) for status in FORWARD_PATH if status != FORWARD_PATH[-1]},
    Status.COMPENSATING: frozenset({Status.CANCELLED, Status.NEEDS_ATTENTION}),
    Status.NEEDS_ATTENTION: frozenset({Status.COMPENSATING}),
    Status.COMPLETED: frozenset(),
    # A charge or shipment that landed after the order was cancelled (or that the reconciler
    # found at the provider) is taken back: the order is compensating again until it is.
    Status.CANCELLED: frozenset({Status.COMPENSATING, Status.NEEDS_ATTENTION}),
}

_COMPENSATION_POSITION = 100


class IllegalTransition(Exception):
    pass


def order_transition(
    *,
    order: Order,
    to: Status,
    reason: Reason | None = None,
    actor: str = "system",
    actor_kind: ActorKind = ActorKind.SYSTEM,
    message: str = "",
) -> None:
    """Move ``order`` (locked by the caller, inside its transaction) to ``to``.

    Refuses moves the status machine does not allow and records each move in the journal
    (with the transaction's other lines, inside ``core.together``).
    Entering ``compensating`` also plans the compensation steps, so the timeline shows what
    is left to undo. A move to an end (``completed``, ``cancelled``, ``needs_attention``) is
    announced as an event in the same transaction, in both modes (the customer's emails).
    """
    if to not in ALLOWED_TRANSITIONS[order.status]:
        raise IllegalTransition(f"An order cannot go from {order.status} to {to}.")
    now = timezone.now()
    insert(
        OrderEvent(
            order=order,
            created_at=now,
            from_status=order.status,
            to_status=to,
            actor=actor,
            actor_kind=actor_kind,
            message=message,
            service=journal_service(actor, actor_kind),
            kind=OrderEvent.Kind.STATUS,
            name=to,
            trace_id=current_trace_id(),
        )
    )
    if to == Status.COMPENSATING:
        _plan_compensation(order)
        if order.status in FORWARD_STATUSES:
            order.cancellation_reason = reason
    order.status = to
    order.progressed_at = now
    order.saga_moved = True
    order.save(update_fields=["status", "cancellation_reason", "progressed_at", "saga_moved", "updated_at"])
    events.order_status_announce(order)


def _plan_compensation(order: Order) -> None:
    for offset, compensation in enumerate(COMPENSATIONS):
        step, created = SagaStep.objects.get_or_create(
            saga_id=order.pk,
            name=compensation.name,
            defaults={"kind": SagaStep.Kind.COMPENSATION, "position": _COMPENSATION_POSITION + offset},
        )
        if not created and step.status == SagaStep.Status.FAILED:
            # Staff retrying a compensation that had given up: run it again.
            step.status = SagaStep.Status.PENDING
            step.save(update_fields=["status"])
