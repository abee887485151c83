"""Staff actions on an order (the admin's buttons), staff notes, and re-queueing parked messages.

Which action applies to which order is decided here, once, for the buttons the admin offers
and again under the order's row lock when the action runs: an order can move on between the
page and the click. The actions themselves are the order services the API uses.

Kept out of ``orders/services.py`` while the saga core is being reworked; it only calls the
public services and ``orders.journal.order_record_action``.
"""

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from events.models import InboxEntry
from events.services import event_requeue
from orders import services
from orders.journal import order_record_action
from orders.models import FORWARD_STATUSES, ActorKind, Order, Reason, Status
from orders.selectors import STAFF_NOTE_PREFIX
from outbox.models import OutboxMessage
from outbox.relay import outbox_requeue

NOTE_MAX_LENGTH = 2000


@dataclass(frozen=True)
class StaffAction:
    name: str
    label: str
    permission: str  # codename in Order.Meta.permissions
    explanation: str  # what it will do, shown on the button's page and its confirmation
    run: Callable[..., Order]
    refusal: Callable[[Order, datetime], str | None]  # why it does not apply, None when it does


def _cancel_refusal(order: Order, now: datetime) -> str | None:
    if order.status in FORWARD_STATUSES:
        return None
    if order.status == Status.COMPENSATING:
        return "It is being cancelled already."
    return f"An order that is {_human(order)} cannot be cancelled."


def _human(order: Order) -> str:
    return str(order.status).replace("_", " ")


def _stall_seconds() -> float:
    return float(settings.SAGA_STALL_SECONDS)


def _retry_saga_refusal(order: Order, now: datetime) -> str | None:
    if order.status == Status.NEEDS_ATTENTION:
        # order_retry_saga would quietly re-run the compensation; staff must choose that.
        return 'Its saga has ended with a compensation that gave up: use "Retry compensation".'
    if order.is_terminal:
        return f"The saga of a {_human(order)} order has ended."
    idle = now - order.progressed_at
    if idle < timedelta(seconds=_stall_seconds()):
        return (
            f"Its saga is still moving (last progress {idle.total_seconds():.0f} s ago); it can be retried "
            f"after {_stall_seconds():.0f} s without progress."
        )
    return None


def _retry_compensation_refusal(order: Order, now: datetime) -> str | None:
    if order.status == Status.NEEDS_ATTENTION:
        return None
    return "Only an order that needs attention has a compensation to retry."


STAFF_ACTIONS = {
    action.name: action
    for action in (
        StaffAction(
            "cancel",
            "Cancel and compensate",
            "cancel_order",
            "Stops the order and undoes what was done: the reserved stock is released, a captured payment "
            "is refunded and a created shipment is cancelled. The order ends cancelled by staff.",
            partial(services.order_cancel, reason=Reason.STAFF_REQUEST),
            _cancel_refusal,
        ),
        StaffAction(
            "retry_saga",
            "Retry saga",
            "retry_saga",
            "Sends a stuck order on from where it stopped: steps already done are not repeated and nothing "
            "is charged twice. Offered once the saga has made no progress for a while.",
            services.order_retry_saga,
            _retry_saga_refusal,
        ),
        StaffAction(
            "retry_compensation",
            "Retry compensation",
            "retry_compensation",
            "Runs the undo steps that gave up (such as a failed refund) once more. The order goes back to "
            "compensating, then ends cancelled, or needs attention again if they fail again.",
            services.order_retry_compensation,
            _retry_compensation_refusal,
        ),
    )
}


def staff_action_refusal(*, action: StaffAction, order: Order, now: datetime | None = None) -> str | None:
    """Why ``action`` does not apply to ``order`` as read, or None when it does."""
    return action.refusal(order, now or timezone.now())


def staff_actions_applicable(*, order: Order, permissions: set[str]) -> list[StaffAction]:
    """The actions the admin offers on ``order`` to a user holding ``permissions`` (codenames)."""
    now = timezone.now()
    return [
        action
        for action in STAFF_ACTIONS.values()
        if action.permission in permissions and action.refusal(order, now) is None
    ]


def staff_action_run(*, action: StaffAction, order_id: Any, actor: str) -> Order:
    """Run ``action`` on the order if it still applies, else raise ``ActionRefused`` saying why.

    The check and the action share one transaction under the order's row lock, so "Retry saga"
    can never reach a ``needs_attention`` order (whose retry would re-run the compensation).
    Side effects and compensation: those of the service the action names.
    """
    with transaction.atomic():
        order = Order.objects.lock(order_id)
        refusal = action.refusal(order, timezone.now())
        if refusal is not None:
            raise services.ActionRefused(refusal)
        return action.run(order_id=order.pk, actor=actor)


def order_note_add(*, order_id: Any, actor: str, text: str) -> None:
    """Add a staff note to the order's timeline, with who wrote it and when.

    Notes are for staff: the customer's order page leaves them out. Raises ``ValidationError``
    for an empty or over-long note. No compensation: notes are never removed.
    """
    text = text.strip()
    if not text:
        raise ValidationError("A note cannot be empty.")
    if len(text) > NOTE_MAX_LENGTH:
        raise ValidationError(f"A note has at most {NOTE_MAX_LENGTH} characters.")
    with transaction.atomic():
        order = Order.objects.lock(order_id)
        order_record_action(order=order, actor=actor, actor_kind=ActorKind.STAFF, message=f"{STAFF_NOTE_PREFIX}{text}")


def parked_messages_requeue(*, ids: list[int], actor: str) -> list[OutboxMessage]:
    """Staff action: publish parked outbox messages again (``outbox.relay.outbox_requeue``).

    Each message's order gets a line in its journal, under the staff user's name, with what
    was re-queued and the error that had parked it, in the transaction of the re-queue.
    Returns the messages that were parked. Compensation: none (a message that fails again is
    parked again).
    """
    with transaction.atomic():
        rows = outbox_requeue(ids=ids, actor=actor)
        _journal_requeued(actor, [(row.shard, f"message {row.name} (#{row.pk})", row.last_error) for row in rows])
    return rows


def parked_events_requeue(*, ids: list[int], actor: str) -> list[InboxEntry]:
    """Staff action: deliver parked events to their consumer again (``events.services.event_requeue``).

    Audited like ``parked_messages_requeue``; the event is then handled exactly once.
    """
    with transaction.atomic():
        entries = event_requeue(ids=ids, actor=actor)
        _journal_requeued(actor, [(e.saga_id, f"event {e.event_name} for {e.consumer}", e.error) for e in entries])
    return entries


def _journal_requeued(actor: str, requeued: list[tuple[str, str, str]]) -> None:
    """One journal line per re-queued message, on the order it belongs to (a shard that names
    no order, such as a test's, gets none)."""
    orders = {str(order.pk): order for order in Order.objects.filter(pk__in=_uuids(s for s, _, _ in requeued))}
    for shard, what, error in requeued:
        order = orders.get(shard)
        if order is not None:
            last_line = (error.strip().splitlines() or ["no error recorded"])[-1]
            order_record_action(
                order=order,
                actor=actor,
                actor_kind=ActorKind.STAFF,
                name="requeue",
                message=f"Re-queued parked {what}; it had failed with {last_line}",
            )


def _uuids(values: Iterable[str]) -> list[uuid.UUID]:
    found = []
    for value in values:
        try:
            found.append(uuid.UUID(value))
        except ValueError:
            continue
    return found
