"""Starting, resuming and turning back an order's saga, in the order's coordination mode.

Orchestration sends the canvas of ``orders/saga.py``; choreography announces an event and
lets the services that subscribe react (``*/handlers.py``). Either way the messages are
written to the outbox in the caller's transaction.
"""

from collections.abc import Sequence

from django.conf import settings

from orders import events, saga
from orders.models import Coordination, Order, OrderLine
from orders.plan import ORDER_SAGA

PARTICIPANTS = ORDER_SAGA.participants


def default_coordination() -> Coordination:
    return Coordination(settings.ORDER_COORDINATION)


def saga_start(order: Order, lines: Sequence[OrderLine]) -> None:
    """The new order: orchestrated, its canvas; announced in both modes (the customer's email).

    The canvas goes first: the relay sends an order's messages one after another, and the
    first step should not wait behind the email.
    """
    if order.coordination == Coordination.ORCHESTRATION:
        saga.saga_send(order, lines, fresh=True)
    events.order_placed_announce(order, lines)


def saga_resume(order: Order) -> None:
    """Drive a stalled saga on from its recorded state (the sweeper, a staff retry).

    Choreographed, the participants hear ``order.redriven``; the one whose step the order's
    status waits for acts, the others find nothing to do.
    """
    lines = list(order.lines.order_by("id"))
    if order.coordination == Coordination.ORCHESTRATION:
        saga.saga_send(order, lines)
    else:
        events.order_redriven_announce(order, lines, only=PARTICIPANTS)


def compensation_start(order: Order) -> None:
    """Undo what the saga did (in the transaction that made the order ``compensating``)."""
    if order.coordination == Coordination.ORCHESTRATION:
        saga.compensation_send(order)
    else:
        events.order_compensating_announce(order, only=PARTICIPANTS)
