"""The relay: publishes committed outbox rows to the broker, at least once, in order per shard.

It runs in two places. Every Celery worker process publishes right after its own commits
(``Written``), which keeps a saga's hops fast; and a thread in each worker's main
process sweeps the table for the rest: rows written by the web (which never talks to the
broker), rows whose publish failed while the broker was down, and retries that have become
due. It sweeps every ``OUTBOX_POLL_SECONDS``, and on PostgreSQL also as soon as a transaction
that left rows to it commits (``wake_relay``). Any number of relays may run: a round claims the
head of each shard with ``FOR UPDATE SKIP LOCKED``, and the due rows behind the heads it holds,
so two relays never send one row at once nor overtake each other within a shard. Rows are chosen
by status, never by an id cursor, so a transaction that commits late is not skipped.
"""

import json
import logging
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import current_app, signature
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone
from kombu.exceptions import EncodeError

from core.connections import quiet_connections_trusted
from outbox import nearby
from outbox.models import OutboxMessage, mark_sent
from telemetry.context import continuing, untraced

logger = logging.getLogger(__name__)

# What a message that can never be published raises: it is parked for a person. Anything else
# (a connection refused, a timeout, kombu's errors) is taken as the broker being down: the
# message waits for the next round, however long the outage lasts.
POISON = (EncodeError, TypeError, ValueError, LookupError)

_publish_on_commit = False

# The channel on which PostgreSQL wakes the relay threads: a transaction that leaves its rows to
# them says so (``NOTIFY``, delivered when it commits, and only if it does), so a web's order is
# published within milliseconds instead of at the next sweep. Other databases have no such
# signal: there the sweep alone picks those rows up.
WAKE_CHANNEL = "shop_outbox"


def publish_on_commit(enabled: bool) -> None:
    """Worker processes publish right after their commits; the web never does (see module)."""
    global _publish_on_commit
    _publish_on_commit = enabled


class Written(list[OutboxMessage]):
    """The rows one transaction wrote, as the ``on_commit`` callback that publishes them: the
    list lives and dies with the transaction's pending callbacks, rolled back with them. The
    rows this worker runs itself (``here``, with whether each is a saga's next hop) are handed
    to ``outbox.nearby`` instead."""

    here: list[tuple[OutboxMessage, bool]]

    def __call__(self) -> None:
        if _publish_on_commit and self:
            try:
                relay_due(ids=[row.pk for row in self])
            except Exception:  # the relay thread will send them; the task that wrote them has succeeded
                logger.warning("Publishing right after commit failed; the relay will retry", exc_info=True)
        for row, next_hop in self.here:
            nearby.run_after_task(row.pk, row.message, row.options, row.trace_context, next_hop=next_hop)

    def add(self, row: OutboxMessage, *, here: bool = False, next_hop: bool = False) -> None:
        """Publish ``row`` once the transaction commits, with its other rows (one round per
        transaction, however many messages it writes); or, ``here``, run it in this process
        (``outbox.nearby``), a ``next_hop`` before the rest."""
        if here:
            self.here.append((row, next_hop))
        else:
            self.append(row)


def written() -> Written:
    """The rows the caller's transaction has written so far, to be sent when it commits. In a
    process that does not publish (the web), the relay threads are woken at commit instead."""
    connection = transaction.get_connection()
    found = next((func for _, func, _ in connection.run_on_commit if isinstance(func, Written)), None)
    if found is None:
        found = Written()
        found.here = []
        transaction.on_commit(found)
        if not _publish_on_commit:
            wake_relay()
    return found


def wake_relay() -> None:
    """Have the relay threads sweep as soon as the caller's transaction commits (PostgreSQL)."""
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {WAKE_CHANNEL}")


class BrokerDown(Exception):
    pass


def relay_due(*, limit: int = 100, rounds: int | None = None, ids: list[int] | None = None) -> int:
    """Publish the messages that are due, ``limit`` per round; return how many were sent.
    With ``ids``, only those rows: each is sent, or waits behind an unsent row of its shard.

    Raises ``BrokerDown`` when the broker refuses (what was published before stays sent).
    A message that fails to publish for another reason is retried on later rounds and parked
    after ``OUTBOX_MAX_ATTEMPTS``, with its error, for a person to look at.
    """
    if ids is not None:
        with transaction.atomic():
            batch = _claim_own(ids)  # already marked sent: what fails to go out is unmarked
            published, down = _publish_in_order(batch)
            _mark_unsent([row.pk for row in batch if row.pk not in published])
        if down is not None:
            raise down
        return len(published)
    sent = 0
    while rounds is None or rounds > 0:
        rounds = None if rounds is None else rounds - 1
        with transaction.atomic():
            batch = _claim(limit)
            published, down = _publish_in_order(batch)
            mark_sent(published)
        sent += len(published)
        if down is not None:
            raise down
        if len(batch) < limit:  # nothing more is due: what was held back waits for the next sweep
            break
    return sent


def _publish_in_order(batch: list["Due"]) -> tuple[list[int], BrokerDown | None]:
    """Publish the claimed rows in order: the ids sent, and the broker's refusal if it stopped
    the round. A row that cannot be sent holds back the rest of its shard."""
    published: list[int] = []
    held: set[str] = set()  # shards whose earlier row was not sent: the rest of each waits
    for row in batch:
        if row.shard in held:
            continue
        try:
            if _publish(row):
                published.append(row.pk)
            else:
                held.add(row.shard)
        except BrokerDown as exc:
            return published, exc
    return published, None


# The relay's reads and writes are SQL of its own: they run for every message of every hop, and
# the ORM spent more CPU building them and loading model instances than the publish itself
# (5.0 ms of CPU per message before, measured in one process; see bench/improvements.md).


@dataclass
class Due:
    """An unsent row, as the relay reads it."""

    pk: int
    shard: str
    name: str
    message: dict[str, Any]
    options: dict[str, Any]
    trace_context: dict[str, Any]
    attempts: int
    available_at: Any  # only compared with other rows' (a datetime, or SQLite's text)


TABLE = OutboxMessage._meta.db_table
COLUMNS = ("id", "shard", "name", "message", "options", "trace_context", "attempts", "available_at")
UNSENT = "m.sent_at IS NULL AND m.parked_at IS NULL AND m.available_at <= %s"
# Nothing unsent comes before the row in its shard, except the due rows of ``{besides}``.
FIRST_IN_SHARD = f"""NOT EXISTS (
    SELECT 1 FROM {TABLE} e
    WHERE e.shard = m.shard AND e.sent_at IS NULL AND e.parked_at IS NULL
      AND (e.available_at < m.available_at OR (e.available_at = m.available_at AND e.id < m.id))
      {{besides}})"""


def _claim(limit: int) -> list[Due]:
    """A sweep's round: the head of each shard that no other relay holds, and behind each head
    the shard's other due rows, in order (so an order's messages go in one round, not one round
    each). No other relay takes those: they are not heads while the head we hold is unsent."""
    heads = _heads(limit)
    if not heads:
        return heads
    shards, taken = {h.shard for h in heads}, [h.pk for h in heads]
    followers = _select(
        f"{UNSENT} AND m.shard IN ({_marks(shards)}) AND m.id NOT IN ({_marks(taken)})",
        [_now(), *shards, *taken],
        limit,
        "FOR UPDATE",
    )
    return sorted([*heads, *followers], key=lambda row: (row.available_at, row.pk))


def _heads(limit: int) -> list[Due]:
    """Due rows that no earlier unsent row of their shard waits before, and no other relay holds."""
    return _select(f"{UNSENT} AND {FIRST_IN_SHARD.format(besides='')}", [_now()], limit, "FOR UPDATE SKIP LOCKED")


def _claim_own(ids: list[int]) -> list[Due]:
    """The due rows a transaction wrote, claimed and marked sent in one statement, in order:
    they do not hold each other back, but an unsent row of their shard from before does.
    The caller unmarks, in the same transaction, what it then fails to publish. Waiting for a
    row's lock keeps the order when a relay thread holds the first of them: once it has sent
    it, the statement passes it over (it is no longer unsent) and takes the rest."""
    now = _now()
    besides = f"AND NOT (e.id IN ({_marks(ids)}) AND e.available_at <= %s)"
    sql = (
        f"UPDATE {TABLE} AS m SET sent_at = %s"
        f" WHERE m.id IN ({_marks(ids)}) AND {UNSENT} AND {FIRST_IN_SHARD.format(besides=besides)}"
        f" RETURNING {', '.join(COLUMNS)}"  # unqualified: SQLite's RETURNING knows no alias
    )
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(sql, [now, *ids, now, *ids, now])
        rows = _rows(cursor.fetchall())
    return sorted(rows, key=lambda row: (row.available_at, row.pk))


def _select(where: str, params: list[Any], limit: int, lock: str) -> list[Due]:
    connection = transaction.get_connection()
    selected = ", ".join(f"m.{column}" for column in COLUMNS)
    sql = f"SELECT {selected} FROM {TABLE} m WHERE {where} ORDER BY m.available_at, m.id LIMIT %s"
    if connection.features.has_select_for_update:  # SQLite: its IMMEDIATE transactions serialize relays
        sql += f" {lock}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return _rows(cursor.fetchall())


def _rows(fetched: list[tuple[Any, ...]]) -> list[Due]:
    return [
        Due(pk, shard, name, _json(message), _json(options), _json(trace), attempts, available_at)
        for pk, shard, name, message, options, trace, attempts, available_at in fetched
    ]


def _mark_unsent(ids: list[int]) -> None:
    if ids:
        with transaction.get_connection().cursor() as cursor:
            cursor.execute(f"UPDATE {TABLE} SET sent_at = NULL WHERE id IN ({_marks(ids)})", ids)


def _now() -> Any:
    return transaction.get_connection().ops.adapt_datetimefield_value(timezone.now())


def _marks(values: Collection[object]) -> str:
    return ", ".join(["%s"] * len(values))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _publish(row: Due) -> bool:
    try:
        _apply(row)
    except POISON as exc:
        attempts, error = row.attempts + 1, f"{type(exc).__name__}: {exc}"
        parked_at = timezone.now() if attempts >= settings.OUTBOX_MAX_ATTEMPTS else None
        OutboxMessage.objects.filter(pk=row.pk).update(attempts=attempts, last_error=error, parked_at=parked_at)
        logger.error("Outbox message %s (%s) failed to publish: %s", row.pk, row.name, error)
        return False
    except Exception as exc:
        raise BrokerDown(f"{type(exc).__name__}: {exc}") from exc
    return True


def _apply(row: Due) -> None:
    # Nobody waits for a task's result here (``task_ignore_result``), but a canvas would still
    # subscribe to its tasks' result channels on a Redis result backend, and unsubscribe, at
    # every publish, unless told so. What Celery shows of the arguments (Flower, ``celery
    # inspect``, its log of a failed task) names the row, not its payload: an event carries the
    # customer's address, and Celery's ``saferepr`` of it was a quarter of a publish's CPU (0.51
    # against 0.37 ms, measured in one process; bench/improvements.md, eighth round).
    described = {"argsrepr": f"(outbox message {row.pk}, shard {row.shard})", "kwargsrepr": "{}"}
    options = {"ignore_result": True} | described | row.options
    with continuing(row.trace_context):  # the publish, and so the task, join the row's trace
        signature(row.message, app=current_app).apply_async(**options)


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
        wake_relay()
    for row in parked:
        logger.info("Outbox message %s (%s) re-queued by %s", row.pk, row.name, actor)
    return parked


class RelayThread(threading.Thread):
    """The relay's sweep, as a daemon thread of a worker's main process: every
    ``OUTBOX_POLL_SECONDS``, and at once when PostgreSQL says rows were left for it."""

    def __init__(self) -> None:
        super().__init__(name="outbox-relay", daemon=True)
        self.stopping = threading.Event()
        self.wakeups = Wakeups()

    def run(self) -> None:
        pause = settings.OUTBOX_POLL_SECONDS
        try:
            while not self.stopping.is_set():
                backing_off = True
                try:
                    with untraced():  # a sweep is no one's trace; each message it publishes is
                        relay_due()
                    pause, backing_off = settings.OUTBOX_POLL_SECONDS, False
                except BrokerDown as exc:
                    pause = min(max(pause * 2, 0.5), 5.0)
                    logger.warning("Broker unavailable, outbox waits %.1fs: %s", pause, exc)
                except Exception:
                    pause = 1.0
                    logger.exception("Outbox relay round failed")
                finally:
                    close_old_connections()
                    quiet_connections_trusted()  # no SELECT 1 before each sweep (core.connections)
                # A new order is no sign that the broker is back: a back-off is waited out whole,
                # and the wake-ups that came meanwhile make one sweep after it.
                if backing_off or not self.wakeups.wait(pause):
                    self.stopping.wait(pause)
        finally:
            self.wakeups.close()
            connections.close_all()  # this thread's own

    def stop(self) -> None:
        self.stopping.set()
        try:
            wake_relay()  # outside a transaction: at once, so a long wait ends now
        except Exception:
            logger.debug("Could not wake the relay to stop it; it stops after its wait", exc_info=True)
        self.join(timeout=5)


class Wakeups:
    """``LISTEN`` for ``wake_relay`` on a connection of the relay's own (PostgreSQL only).

    Why not a package: the NOTIFY helpers for Django (django-pgpubsub and kin) route payloads to
    handlers through tables of their own; a relay that only needs "look now" needs one query.
    A lost connection costs nothing but latency: the sweep goes on, and it listens again later.
    """

    def __init__(self) -> None:
        self.wrapper: Any = None  # Django's, around the psycopg connection that listens
        self.connection: Any = None
        self.retry_at = 0.0

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a wake-up; ``False`` when there is nothing to listen on."""
        if self.connection is None and not self._listen():
            return False
        try:
            for _ in self.connection.notifies(timeout=seconds, stop_after=1):
                break  # with those that came in the same read: one sweep answers them all
        except Exception:
            logger.warning("The outbox relay stopped listening; it sweeps until it can again", exc_info=True)
            self.close()
            return False
        return True

    def _listen(self) -> bool:
        if connections["default"].vendor != "postgresql" or time.monotonic() < self.retry_at:
            return False
        listener = connections.create_connection("default")
        try:
            listener.ensure_connection()  # Django's wrapper: autocommit, as LISTEN needs
            listener.connection.execute(f"LISTEN {WAKE_CHANNEL}")
        except Exception:
            self.retry_at = time.monotonic() + 5.0
            listener.close()
            return False
        self.wrapper, self.connection = listener, listener.connection
        return True

    def close(self) -> None:
        if self.connection is not None:
            self.wrapper.close()
            self.connection = None


_thread: RelayThread | None = None


def start_relay_thread(**_: Any) -> None:
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = RelayThread()
        _thread.start()


def stop_relay_thread(**_: Any) -> None:
    if _thread is not None:
        _thread.stop()
