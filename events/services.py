"""Publishing domain events through the outbox, and handling them once (the inbox).

An event is written to the outbox in the transaction of the state change it announces, one
message per subscribed service, to that service's queue (a Redis fanout would lose the event
for a consumer that is offline). The outbox shard is the saga, so one order's events reach
each queue in the order they happened. On the consuming side, the inbox entry is written in
the transaction of the handler's effect, and only when the handler succeeded.

Why not a package: the Django event libraries (django-outbox-pattern and kin) publish over
STOMP; none delivers to Celery queues through this project's outbox, or keeps an inbox.
"""

import logging
import traceback
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from celery import signature
from celery.canvas import Signature
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.retry import backoff_seconds
from core.selectors import queues_moved_past
from core.together import together
from events.models import InboxEntry
from events.registry import Event, Subscription, subscribers, subscription, subscriptions
from outbox.models import OutboxMessage
from outbox.relay import outbox_resend
from outbox.services import outbox_send, outbox_send_many
from telemetry.context import operation

logger = logging.getLogger(__name__)


def event_publish(
    *,
    name: str,
    saga_id: Any,
    mode: str,
    publisher: str,
    data: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    only: Iterable[str] | None = None,
) -> Event:
    """Announce ``name`` to every service subscribed to it for sagas of ``mode``.

    Call it inside the transaction of the change it announces (``outbox_send`` refuses
    otherwise). ``only`` narrows the delivery to some services (a re-drive by the sweeper
    wakes the service that has to act, and nobody else). Returns the event.
    """
    event = Event(
        id=str(uuid.uuid4()),
        name=name,
        saga_id=str(saga_id),
        mode=mode,
        publisher=publisher,
        data=data or {},
        context=context or {},
    )
    wanted = set(only) if only is not None else None
    envelope = asdict(event)
    heard_by = [sub for sub in subscribers(name, mode) if wanted is None or sub.service in wanted]
    if heard_by:
        # an event to a saga's step carries the saga on: a worker running it in process runs it
        # before the bookkeeping and the emails (``outbox.nearby``)
        messages = [_message(sub, envelope, attempt=0) for sub in heard_by]
        outbox_send_many(messages=messages, shard=event.saga_id, next_hops=[sub.step for sub in heard_by])
    return event


def _deliver(sub: Subscription, event: Event, *, attempt: int, delay: float = 0.0) -> None:
    outbox_send(message=_message(sub, asdict(event), attempt=attempt), shard=event.saga_id, delay=delay)


def _message(sub: Subscription, envelope: dict[str, Any], *, attempt: int) -> Signature[Any]:
    return signature(f"{sub.service}.handle_event", args=(sub.consumer, envelope, attempt))


@dataclass
class Delivery:
    """One delivery of an event to a step handler: how to finish it, or have it come again."""

    subscription: Subscription
    event: Event
    attempt: int

    def done(self) -> None:
        """Record the event as handled; call it in the transaction of the handler's outcome."""
        _record(self.subscription, self.event)

    def again(self, *, delay: float, attempt: int) -> None:
        """Deliver the event to this handler again after ``delay`` (a retry, or a wait)."""
        _deliver(self.subscription, self.event, attempt=attempt, delay=delay)


def event_handle(*, consumer: str, message: dict[str, Any], attempt: int) -> None:
    """Run ``consumer``'s handler for the event in ``message``, at most once in effect."""
    event = Event.from_message(message)
    sub = subscription(consumer, event.name)
    with _handling(sub, event, attempt):
        _handle(sub, event, consumer, attempt)


def events_handle_together(messages: list[dict[str, Any]]) -> bool:
    """Handle the events of several ``<service>.handle_event`` messages in one transaction, as
    ``event_handle`` handles each in one of its own: their inbox entries in one INSERT, then
    each handler, in order. Only for one consumer's events about one saga, whose subscriptions
    say ``batch`` (they write nothing but the database).

    All or nothing: returns ``False``, having written nothing, when they may not go together or
    when any of them fails (a copy handled already, a handler's error); the caller then delivers
    each on its own (``event_handle``), with its own retries and parking.
    """
    deliveries = [_delivery(message) for message in messages]
    if len({(sub.consumer, event.saga_id) for sub, event, _ in deliveries}) != 1:
        return False
    if not all(sub.batch and not sub.step for sub, _, _ in deliveries):
        return False
    try:
        with transaction.atomic(), together():
            # Strictly once, as one by one: a copy handled already fails the INSERT (and the batch).
            InboxEntry.objects.bulk_create(
                InboxEntry(consumer=sub.consumer, event_id=event.id, event_name=event.name, saga_id=event.saga_id)
                for sub, event, _ in deliveries
            )
            for sub, event, attempt in deliveries:
                with _handling(sub, event, attempt):
                    sub.handler(event)
    except Exception as exc:
        logger.info("%s events of one saga handled one by one instead: %s", len(deliveries), exc)
        return False
    return True


def _delivery(message: dict[str, Any]) -> tuple[Subscription, Event, int]:
    """What a ``handle_event`` message (``_message``) carries: the subscription, the event, the attempt."""
    consumer, envelope, *rest = message["args"]
    event = Event.from_message(envelope)
    return subscription(consumer, event.name), event, int(rest[0]) if rest else 0


def _handling(sub: Subscription, event: Event, attempt: int) -> Any:
    """The span (and log fields) of one handler's run. ``attempt`` counts deliveries from 1 in
    logs and traces; a step handler's own attempt (the step runtime's) replaces it inside the step."""
    return operation(
        f"{sub.consumer} on {event.name}",
        keep=True,
        saga_id=event.saga_id,
        event=event.name,
        step=sub.handler.__name__,
        service=sub.service,
        attempt=attempt + 1,
    )


def _handle(sub: Subscription, event: Event, consumer: str, attempt: int) -> None:
    try:
        if sub.step:
            if InboxEntry.objects.filter(consumer=consumer, event_id=event.id).exists():
                return  # handled already (or parked): a redelivery changes nothing
            # The step runtime turns every outcome of the step (a business refusal, a provider
            # error) into a recorded decision; what escapes it is not the saga's own doing.
            sub.handler(event, Delivery(sub, event, attempt))
            return
        with transaction.atomic(), together():
            # Strictly once, with no read first: the entry goes in before the handler runs, and
            # a copy handled (or parked) already, or being handled now, fails on its unique key
            # (a concurrent copy waits for the first to commit), below.
            InboxEntry.objects.create(
                consumer=sub.consumer, event_id=event.id, event_name=event.name, saga_id=event.saga_id
            )
            sub.handler(event)
    except IntegrityError:
        if InboxEntry.objects.filter(consumer=consumer, event_id=event.id).exists():
            return  # a copy of this delivery got there first: a redelivery changes nothing
        _failed(sub, event, attempt)
    except Exception:
        _failed(sub, event, attempt)


def _record(sub: Subscription, event: Event) -> None:
    """A step handler's inbox entry, with the step's outcome. The step runtime already lets
    one attempt record an outcome; a compensation run twice at once (it is idempotent) finds
    the entry of the copy that finished first, and goes on."""
    # One INSERT … ON CONFLICT DO NOTHING: no read first, and no savepoint around the insert.
    entry = InboxEntry(consumer=sub.consumer, event_id=event.id, event_name=event.name, saga_id=event.saga_id)
    InboxEntry.objects.bulk_create([entry], ignore_conflicts=True)


def _failed(sub: Subscription, event: Event, attempt: int) -> None:
    """Retry with backoff; park the event (with its error) once the retries are spent.

    A retry is logged as a WARNING with the error on one line (an SMTP server down fails every
    attempt alike: one traceback per attempt would bury the log); parking, which needs a person,
    is an ERROR with the traceback.
    """
    error = traceback.format_exc(limit=5)
    with transaction.atomic():
        if attempt < settings.EVENTS_MAX_ATTEMPTS:
            delay = backoff_seconds(attempt, cap=settings.EVENTS_RETRY_MAX_SECONDS)
            _deliver(sub, event, attempt=attempt + 1, delay=delay)
            logger.warning(
                "%s failed on %s of saga %s (attempt %s), retried in %.1fs: %s",
                sub.consumer, event.name, event.saga_id, attempt, delay, error.strip().splitlines()[-1],
            )  # fmt: skip
            return
        logger.exception(
            "%s failed on %s of saga %s for good (attempt %s): parked", sub.consumer, event.name, event.saga_id, attempt
        )
        InboxEntry.objects.create(
            consumer=sub.consumer,
            event_id=event.id,
            event_name=event.name,
            saga_id=event.saga_id,
            parked=True,
            error=error,
            event=asdict(event),
        )


def event_requeue(*, ids: list[int], actor: str) -> list[InboxEntry]:
    """Staff action: deliver these parked events to their consumer again, as a first delivery.

    A parked event holds its consumer's inbox entry, which is what makes any further copy
    change nothing; re-queueing deletes that entry and delivers the event again (through the
    outbox, in this transaction). The handler then records the entry with its effect, as for
    any event, so the event is handled exactly once however often it is re-queued or
    redelivered. Returns the parked entries as they were (their error and event included), for
    the caller's audit; ids that are not parked are left alone. A handler that fails again
    is retried and parked again.
    """
    with transaction.atomic():
        parked = list(InboxEntry.objects.select_for_update().filter(pk__in=ids, parked=True))
        for entry in parked:
            event = Event.from_message(entry.event)
            _deliver(subscription(entry.consumer, event.name), event, attempt=0)
        InboxEntry.objects.filter(pk__in=[entry.pk for entry in parked]).delete()
    for entry in parked:
        logger.info("Event %s (%s) re-queued for %s by %s", entry.event_id, entry.event_name, entry.consumer, actor)
    return parked


def events_redeliver_unhandled(*, after: timedelta, within: timedelta) -> int:
    """Send again each event a broker lost after the relay handed it over; return how many.

    The outbox guarantees an event reaches the broker; a broker that then loses it (a Redis
    restarted without persistence, a filesystem broker whose worker was killed holding it) would
    lose a customer's email. A handler that records its inbox entry whatever it decides (every
    one but the saga's steps, whose sweeper re-drives them) has handled an event once the entry
    exists. An event delivered longer than ``after`` ago, within ``within``, with no entry, is
    lost if its queue has moved past it (``core.selectors.queues_moved_past``), and published
    again. One still waiting in its queue behind a backlog, or in a queue no worker serves, is
    left there: a copy would only lengthen the wait. Only an event's latest delivery counts (an
    earlier one that failed has a retry after it); a copy of one that was only slow (a worker
    held it) is found in the inbox by its handler, and changes nothing.
    """
    recorded = {s.consumer for s in subscriptions() if not s.step}
    queues = {consumer.partition(".")[0] for consumer in recorded}  # routed by name (CELERY_TASK_ROUTES)
    tasks = {f"{queue}.handle_event" for queue in queues}
    now = timezone.now()
    latest: dict[tuple[str, str], tuple[int, Any]] = {}
    rows = OutboxMessage.objects.filter(name__in=tasks, created_at__gte=now - within).order_by("id")
    for pk, message, sent_at in rows.values_list("id", "message", "sent_at"):
        consumer, envelope = message["args"][0], message["args"][1]
        if consumer in recorded:
            latest[(consumer, str(envelope["id"]))] = (pk, sent_at)
    handled = {
        (consumer, str(event_id))
        for consumer, event_id in InboxEntry.objects.filter(
            event_id__in={event_id for _, event_id in latest}
        ).values_list("consumer", "event_id")
    }
    moved_past = queues_moved_past(queues)
    lost, waiting = [], 0
    for key, (pk, sent_at) in latest.items():
        if sent_at is None or sent_at >= now - after or key in handled:
            continue
        passed = moved_past.get(key[0].partition(".")[0])
        if passed is not None and sent_at < passed:
            lost.append(pk)
        else:
            waiting += 1
    if lost:
        logger.warning("Publishing %s event(s) again: delivered, never handled", len(lost))
    if waiting:
        logger.info("%s event(s) unhandled after %s still wait in their queue: not sent again yet", waiting, after)
    return outbox_resend(ids=lost)
