"""The order's journal (contract §3, ``/api/orders/<id>/journal/``): its lines written, and read.

Each line of ``OrderEvent`` names the service that acted. A line is written here
(``order_record_action``; a status change's own line by ``orders.transitions``) and read as a
numbered entry (``seq`` 1..n, oldest first) with a customer-readable label, and the choice of
which lines a customer's order page shows.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import models
from django.db.models import Q

from core.together import insert
from orders.models import ActorKind, Order, OrderEvent
from orders.plan import ORDER_SAGA
from telemetry.context import current_trace_id

# Who acted (contract §3): the saga's owner and its participants, in the order of the saga's
# plan (a step's service joins the journal with it), the emails, a member of staff, the sweeper.
_SERVICES = (ORDER_SAGA.owner, *ORDER_SAGA.participants, "notifications", "staff", "sweeper")
JournalService = models.TextChoices(  # type: ignore[call-overload]
    "JournalService", [(name.upper(), (name, name.capitalize())) for name in _SERVICES]
)


# What the customer's order page lists. Status changes, the services' events, a step's success,
# compensations and actions (placing, a cancel, a staff retry) tell what happened and which
# service did it: a step's participant names itself in both modes (choreographed, by the event
# it announces; orchestrated, by its ``step`` line). Commands, retries and step failures are the
# machinery underneath: a command is followed by the step's success, a retry by the step's
# outcome, and a step failure by the status line that names it; the folded steps table already
# shows attempts and the last error. Staff see every line in the admin and the API.
CUSTOMER_KINDS = frozenset(
    {OrderEvent.Kind.STATUS, OrderEvent.Kind.EVENT, OrderEvent.Kind.COMPENSATION, OrderEvent.Kind.ACTION}
)
# A ``step`` line's detail when the step succeeded (``sagas.runtime``): "succeeded", "succeeded
# for every line".
STEP_SUCCEEDED = "succeeded"


def customer_lines() -> Q:
    """The lines the customer's order page lists (``CUSTOMER_KINDS`` and a step's success)."""
    return Q(kind__in=CUSTOMER_KINDS) | Q(kind=OrderEvent.Kind.STEP, message__startswith=STEP_SUCCEEDED)


def step_succeeded(kind: str, detail: str) -> bool:
    return kind == OrderEvent.Kind.STEP and detail.startswith(STEP_SUCCEEDED)


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    at: datetime
    service: str
    kind: str
    name: str
    detail: str
    trace_id: str = ""  # the trace the line was written in ("" while tracing is off)


def journal_entries(events: Iterable[OrderEvent]) -> list[JournalEntry]:
    """Number the lines 1.. in the order given (oldest first)."""
    return [
        JournalEntry(
            seq=seq, at=e.created_at, service=e.service, kind=e.kind, name=e.name, detail=e.message, trace_id=e.trace_id
        )
        for seq, e in enumerate(events, start=1)
    ]


def service_label(service: str) -> str:
    """``payments`` → ``Payments``; a service the journal does not know yet reads as its name."""
    try:
        return str(JournalService(service).label)
    except ValueError:
        return service.replace("_", " ").capitalize()


def order_record_action(
    *,
    order: Order,
    actor: str,
    message: str,
    actor_kind: ActorKind = ActorKind.SYSTEM,
    service: str | None = None,
    kind: OrderEvent.Kind = OrderEvent.Kind.ACTION,
    name: str = "",
) -> None:
    """Add a line to the journal without changing the status (a staff action, a recovery)."""
    insert(
        OrderEvent(
            order=order,
            actor=actor,
            actor_kind=actor_kind,
            message=message,
            to_status=order.status,
            service=service or journal_service(actor, actor_kind),
            kind=kind,
            name=name,
            trace_id=current_trace_id(),
        )
    )


def journal_service(actor: str, actor_kind: ActorKind) -> str:
    """Who acted, as the journal names it: staff, the sweeper, or the orders service."""
    if actor_kind == ActorKind.STAFF:
        return "staff"
    if actor_kind == ActorKind.SYSTEM and actor == "sweeper":
        return "sweeper"
    return "orders"
