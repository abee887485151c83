"""Order reads."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from core.permissions import can_see_every_order
from events.models import InboxEntry
from orders.journal import JournalEntry, customer_lines, journal_entries
from orders.models import FORWARD_STATUSES, TERMINAL_STATUSES, Order, OrderEvent, OrderLine, Status
from outbox.models import OutboxMessage
from sagas.models import SagaStep


def order_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Order]:
    """The orders ``user`` may see, newest first, with everything the API shows in few queries.

    One's own orders; every order with the ``view_order`` permission (``core.permissions``),
    whether or not the user is staff.
    """
    orders = (
        Order.objects.select_related("user")
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("id")))
        .with_saga_steps()
    )
    if not user.is_authenticated:
        return orders.none()
    if not can_see_every_order(user):
        orders = orders.filter(user_id=user.pk)
    return orders.order_by("-created_at")


def order_as_placed(order: Order, *, lines: list[OrderLine], steps: list[SagaStep]) -> Order:
    """A new ``order`` as ``order_list`` reads it, from the rows placing it has just written.

    Spares the web request reading them back (three SELECTs, a quarter of its time): the
    lines and steps are the ones given, and a new order has no payment and no shipment yet.
    """
    # Fill the caches as prefetch_related and select_related would.
    order._prefetched_objects_cache = {"lines": _evaluated(order.lines.all(), lines)}  # type: ignore[attr-defined]
    order.__dict__["saga_steps"] = steps
    order.__dict__["payment"] = order.__dict__["shipment"] = None
    return order


def _evaluated(queryset: QuerySet[Any], rows: list[Any]) -> QuerySet[Any]:
    queryset._result_cache = rows
    queryset._prefetch_done = True  # type: ignore[attr-defined]
    return queryset


# Staff notes are timeline entries (``orders.staff.order_note_add``) whose message starts so.
STAFF_NOTE_PREFIX = "Staff note: "


def order_timeline(*, order: Order) -> QuerySet[OrderEvent]:
    return order.events.order_by("created_at", "id")


def order_timeline_for_customer(*, order: Order) -> QuerySet[OrderEvent]:
    """The timeline without the staff's internal notes."""
    return order_timeline(order=order).exclude(message__startswith=STAFF_NOTE_PREFIX)


def order_timeline_for_order_page(*, order: Order) -> QuerySet[OrderEvent]:
    """What the customer's order page lists: no staff notes, and only the kinds of line that
    tell the customer something (``orders.journal.CUSTOMER_KINDS`` says why)."""
    return order_timeline_for_customer(order=order).filter(customer_lines())


def order_journal(*, order: Order, user: AbstractBaseUser | AnonymousUser) -> list[JournalEntry]:
    """The order's journal for ``user``, oldest first, numbered 1..n.

    Whoever holds ``view_order`` (staff) reads every line; anyone else can only reach their own
    order (``order_list``) and reads every line but the staff's internal notes.
    """
    events = order_timeline(order=order) if can_see_every_order(user) else order_timeline_for_customer(order=order)
    return journal_entries(events)


def order_list_of_customer(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Order]:
    """The orders ``user`` placed, also for staff: the storefront's "My orders" shows one's own."""
    if not user.is_authenticated:
        return Order.objects.none()
    return order_list(user=user).filter(user_id=cast(int, user.pk))


def order_last_of_customer(*, user: AbstractBaseUser | AnonymousUser) -> Order | None:
    """The customer's most recent order, without its lines (the account page, checkout's prefill)."""
    if not user.is_authenticated:
        return None
    return Order.objects.filter(user_id=cast(int, user.pk)).order_by("-created_at").first()


def order_count_of_customer(*, user: AbstractBaseUser | AnonymousUser) -> int:
    if not user.is_authenticated:
        return 0
    return Order.objects.filter(user_id=cast(int, user.pk)).count()


def order_last_shipping_address(
    *, user: AbstractBaseUser | AnonymousUser, order_id: str | None = None
) -> dict[str, Any] | None:
    """Where the customer's last order went, or the order ``order_id`` of theirs (trying another
    card for it): checkout offers it again."""
    order = None
    if order_id is not None:
        try:
            order = order_list_of_customer(user=user).filter(pk=order_id).first()
        except ValidationError:  # not a UUID: the last order's address will do
            order = None
    order = order or order_last_of_customer(user=user)
    return dict(order.shipping_address) if order is not None else None


@dataclass(frozen=True)
class StuckOrder:
    """An order whose saga has not ended, with the step it is waiting on (None: every step is
    done and the order's status has yet to catch up, as a choreographed order's may lag)."""

    order: Order
    age: timedelta  # since it was placed
    idle: timedelta  # since its saga last moved (the sweeper re-drives it after SAGA_STALL_SECONDS)
    waiting_on: SagaStep | None


def orders_stuck(*, status: str | None = None, limit: int = 500) -> list[StuckOrder]:
    """The orders whose saga has not ended (``needs_attention`` waits for staff, not for a
    step: it is not among them), oldest first, in both modes, each with the step it waits on.

    Reads the status index and the orders' steps: a handful of queries for ``limit`` orders.
    """
    now = timezone.now()
    statuses = [s for s in Status if s not in TERMINAL_STATUSES and (status is None or s == status)]
    orders = (
        Order.objects.filter(status__in=statuses).select_related("user").with_saga_steps().order_by("created_at")
    )[:limit]
    return [
        StuckOrder(order=o, age=now - o.created_at, idle=now - o.progressed_at, waiting_on=order_waiting_on(o))
        for o in orders
    ]


def order_waiting_on(order: Order) -> SagaStep | None:
    """Going forward: the first step (by plan) that has not succeeded. Compensating: the
    compensation in progress (running or between attempts), else the first yet to run."""
    if order.status == Status.COMPENSATING:
        unfinished = (SagaStep.Status.PENDING, SagaStep.Status.RUNNING, SagaStep.Status.WAITING)
        compensations = [s for s in order.saga_steps if s.kind == SagaStep.Kind.COMPENSATION and s.status in unfinished]
        return min(compensations, key=lambda s: (s.status == SagaStep.Status.PENDING, s.position), default=None)
    return next(
        (s for s in order.saga_steps if s.kind == SagaStep.Kind.FORWARD and s.status != SagaStep.Status.SUCCEEDED),
        None,
    )


@dataclass(frozen=True)
class StalledOrder:
    """An order ``orders.services.saga_recover_stalled`` would act on now: re-drive its saga,
    or cancel it as ``expired`` (pending for longer than ``ORDER_PENDING_EXPIRY_SECONDS``)."""

    order: Order
    idle: timedelta
    expires: bool


def stalled_candidates(*, now: datetime) -> QuerySet[Order]:
    """Sagas with no progress for ``SAGA_STALL_SECONDS``, oldest progress first; a saga going
    forward that waits for a person's decision (a step ``held``) is not stalled (one turning
    back is: its compensations must run whatever the step was waiting for)."""
    stall = timedelta(seconds=settings.SAGA_STALL_SECONDS)
    # Asked of each candidate by its key: the step log has no index on its status (orders.metrics).
    held = SagaStep.objects.filter(saga_id=OuterRef("pk"), status=SagaStep.Status.HELD)
    return (
        Order.objects.filter(status__in=[*FORWARD_STATUSES, Status.COMPENSATING], progressed_at__lt=now - stall)
        .exclude(Exists(held) & Q(status__in=FORWARD_STATUSES))
        .order_by("progressed_at")
    )


def stalled_long_enough(order: Order, *, now: datetime) -> bool:
    """Each re-drive doubles the wait before the next one (up to 32 times)."""
    backoff = settings.SAGA_STALL_SECONDS * 2 ** min(order.recoveries, 5)
    return order.progressed_at < now - timedelta(seconds=backoff)


def orders_stalled(*, limit: int = 500) -> list[StalledOrder]:
    """What the sweeper would recover if it ran now, oldest progress first, without acting.

    The same criteria as ``saga_recover_stalled``: no progress for ``SAGA_STALL_SECONDS``,
    doubled for each earlier re-drive (up to 32 times), read without locks (a sweeper running
    meanwhile may take some first).
    """
    now = timezone.now()
    expired_before = now - timedelta(seconds=settings.ORDER_PENDING_EXPIRY_SECONDS)
    return [
        StalledOrder(
            order=order,
            idle=now - order.progressed_at,
            expires=order.status == Status.PENDING and order.created_at < expired_before,
        )
        for order in stalled_candidates(now=now)[:limit]
        if stalled_long_enough(order, now=now)
    ]


@dataclass(frozen=True)
class OrderSaga:
    """One order's saga as an operator reads it: its steps, its journal and its outbox rows."""

    order: Order
    steps: list[SagaStep]
    journal: list[JournalEntry]
    outbox: list[OutboxMessage]
    parked_events: list[InboxEntry]


def order_saga(*, order_id: Any) -> OrderSaga:
    """The saga of one order (raises ``Order.DoesNotExist``); the journal oldest first, whole."""
    order = Order.objects.with_saga_steps().get(pk=order_id)
    return OrderSaga(
        order=order,
        steps=list(order.saga_steps),
        journal=journal_entries(order_timeline(order=order)),
        outbox=list(OutboxMessage.objects.filter(shard=str(order.pk)).order_by("id")),
        parked_events=list(InboxEntry.objects.filter(saga_id=str(order.pk), parked=True).order_by("id")),
    )


def parked_messages(*, ids: list[int] | None = None) -> list[OutboxMessage]:
    """Outbox messages parked for staff (``ids``: only those), oldest first."""
    rows = OutboxMessage.objects.filter(parked_at__isnull=False).order_by("id")
    return list(rows if ids is None else rows.filter(pk__in=ids))


def parked_events(*, ids: list[int] | None = None) -> list[InboxEntry]:
    """Events parked by their consumer for staff (``ids``: only those), oldest first."""
    entries = InboxEntry.objects.filter(parked=True).order_by("id")
    return list(entries if ids is None else entries.filter(pk__in=ids))
