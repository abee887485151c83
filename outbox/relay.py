"""The relay: publishes committed outbox rows to the broker, at least once, in order per shard.

It runs in two places. Every Celery worker process publishes right after its own commits
(``after_commit``), which keeps a saga's hops fast; and a thread in each worker's main
process sweeps the table every ``OUTBOX_POLL_SECONDS`` for the rest: rows written by the web
(which never talks to the broker), rows whose publish failed while the broker was down, and
retries that have become due. Any number of relays may run: rows are claimed with
``FOR UPDATE SKIP LOCKED``, and only the head of each shard is eligible, so two relays never
send one row at once nor overtake each other within a shard. Rows are chosen by status, never
by an id cursor, so a transaction that commits late is not skipped.
"""

import logging
import threading
from datetime import timedelta
from typing import Any

from celery import current_app, signature
from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from kombu.exceptions import EncodeError

from outbox.models import OutboxMessage
from telemetry.context import continuing, untraced

logger = logging.getLogger(__name__)

# What a message that can never be published raises: it is parked for a person. Anything else
# (a connection refused, a timeout, kombu's errors) is taken as the broker being down: the
# message waits for the next round, however long the outage lasts.
POISON = (EncodeError, TypeError, ValueError, LookupError)

_publish_on_commit = False


def publish_on_commit(enabled: bool) -> None:
    """Worker processes publish right after their commits; the web never does (see module)."""
    global _publish_on_commit
    _publish_on_commit = enabled


def publish_after_commit(pk: int) -> None:
    """Publish the row ``pk`` once the caller's transaction commits, with the transaction's other
    rows: one ``after_commit`` per transaction, however many messages it writes."""
    connection = transaction.get_connection()
    if any(func is after_commit for _, func, _ in connection.run_on_commit):
        connection.outbox_written.append(pk)
    else:
        connection.outbox_written = [pk]
        transaction.on_commit(after_commit)


def after_commit() -> None:
    """Publish the rows the transaction that just committed wrote (``publish_after_commit``);
    any other due row is the relay thread's. Rows behind an unsent one of their shard wait."""
    written = getattr(transaction.get_connection(), "outbox_written", None)
    if not _publish_on_commit or not written:
        return
    try:
        relay_due(ids=written)
    except Exception:  # the relay thread will send it; the task that wrote it has succeeded
        logger.warning("Publishing right after commit failed; the relay will retry", exc_info=True)


class BrokerDown(Exception):
    pass


def relay_due(*, limit: int = 100, rounds: int | None = None, ids: list[int] | None = None) -> int:
    """Publish the messages that are due, ``limit`` per round; return how many were sent.
    With ``ids``, only those rows: each is sent, or waits behind an unsent row of its shard.

    Raises ``BrokerDown`` when the broker refuses (what was published before stays sent).
    A message that fails to publish for another reason is retried on later rounds and parked
    after ``OUTBOX_MAX_ATTEMPTS``, with its error, for a person to look at.
    """
    sent = 0
    left = None if ids is None else set(ids)
    while rounds is None or rounds > 0:
        rounds = None if rounds is None else rounds - 1
        down: BrokerDown | None = None
        with transaction.atomic():
            if left is None:
                batch = list(_heads().select_for_update(skip_locked=True)[:limit])
            else:
                # The caller's own rows, all in one round and in order: they do not block each
                # other. Waiting for a lock (no SKIP LOCKED) keeps the order when a relay thread
                # holds the first of them: once it has sent it, the rest are ours.
                batch = list(_heads(besides=left).filter(pk__in=left).select_for_update()[:limit])
            published: list[int] = []
            for row in batch:
                try:
                    if _publish(row):
                        published.append(row.pk)
                    elif left is not None:
                        break  # what follows it in its shard waits until it is sent or parked
                except BrokerDown as exc:
                    down = exc
                    break
            OutboxMessage.objects.filter(pk__in=published).update(sent_at=timezone.now())
        sent += len(published)
        if down is not None:
            raise down
        if not batch:
            break
        if left is not None:
            left.difference_update(published)
            if len(published) < limit:  # the rest wait behind an unsent row, or are not due
                break
    return sent


def _heads(besides: set[int] | None = None) -> QuerySet[OutboxMessage]:
    """Due, unsent rows that no earlier unsent row of their shard is waiting before, not
    counting the due rows ``besides`` (which the caller sends in the same round, in order)."""
    now = timezone.now()
    unsent = Q(sent_at__isnull=True, parked_at__isnull=True)
    earlier = OutboxMessage.objects.filter(unsent, shard=OuterRef("shard")).filter(
        Q(available_at__lt=OuterRef("available_at")) | Q(available_at=OuterRef("available_at"), id__lt=OuterRef("id"))
    )
    if besides:
        earlier = earlier.exclude(pk__in=besides, available_at__lte=now)
    return (
        OutboxMessage.objects.filter(unsent, available_at__lte=now)
        .exclude(Exists(earlier))
        .order_by("available_at", "id")
    )


def _publish(row: OutboxMessage) -> bool:
    try:
        _apply(row)
    except POISON as exc:
        row.attempts += 1
        row.last_error = f"{type(exc).__name__}: {exc}"
        row.parked_at = timezone.now() if row.attempts >= settings.OUTBOX_MAX_ATTEMPTS else None
        row.save(update_fields=["attempts", "last_error", "parked_at"])
        logger.error("Outbox message %s (%s) failed to publish: %s", row.pk, row.name, row.last_error)
        return False
    except Exception as exc:
        raise BrokerDown(f"{type(exc).__name__}: {exc}") from exc
    return True


def _apply(row: OutboxMessage) -> None:
    with continuing(row.trace_context):  # the publish, and so the task, join the row's trace
        signature(row.message, app=current_app).apply_async(**row.options)


def outbox_resend(*, ids: list[int]) -> int:
    """Publish these sent messages again (a broker lost them): they are due once more."""
    return OutboxMessage.objects.filter(pk__in=ids, sent_at__isnull=False).update(
        sent_at=None, available_at=timezone.now(), attempts=0, last_error=""
    )


def outbox_purge(*, older_than: timedelta) -> int:
    """Delete messages sent longer ago than ``older_than``; return how many."""
    deleted, _ = OutboxMessage.objects.filter(sent_at__lt=timezone.now() - older_than).delete()
    return deleted


def outbox_requeue(*, ids: list[int], actor: str) -> list[OutboxMessage]:
    """Staff action: make these parked messages due again, with a fresh budget of attempts.

    Returns the messages that were parked, as they were (their error included), for the
    caller's audit; ids that are not parked are left alone. A re-queued message takes its turn
    in its shard as if it had been written now. Side effect: the relay publishes it on its next
    round. Compensation: none; a message that fails again is parked again.
    """
    with transaction.atomic():
        parked = list(OutboxMessage.objects.select_for_update().filter(pk__in=ids, parked_at__isnull=False))
        OutboxMessage.objects.filter(pk__in=[row.pk for row in parked]).update(
            parked_at=None, attempts=0, last_error="", available_at=timezone.now()
        )
        transaction.on_commit(after_commit)
    for row in parked:
        logger.info("Outbox message %s (%s) re-queued by %s", row.pk, row.name, actor)
    return parked


class RelayThread(threading.Thread):
    """The relay's sweep, as a daemon thread of a worker's main process."""

    def __init__(self) -> None:
        super().__init__(name="outbox-relay", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        pause = settings.OUTBOX_POLL_SECONDS
        while not self.stopping.is_set():
            try:
                with untraced():  # a sweep is no one's trace; each message it publishes is
                    relay_due()
                pause = settings.OUTBOX_POLL_SECONDS
            except BrokerDown as exc:
                pause = min(max(pause * 2, 0.5), 5.0)
                logger.warning("Broker unavailable, outbox waits %.1fs: %s", pause, exc)
            except Exception:
                pause = 1.0
                logger.exception("Outbox relay round failed")
            finally:
                close_old_connections()
            self.stopping.wait(pause)


_thread: RelayThread | None = None


def start_relay_thread(**_: Any) -> None:
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = RelayThread()
        _thread.start()


def stop_relay_thread(**_: Any) -> None:
    if _thread is not None:
        _thread.stopping.set()
        _thread.join(timeout=5)
