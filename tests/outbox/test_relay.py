"""The outbox: messages exist exactly when their transaction committed, and the relay sends
each order's messages in order, once due, and parks what can never be sent."""

import threading
import time
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from celery import signature
from celery.canvas import Signature
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from outbox import relay
from outbox.models import OutboxMessage
from outbox.services import outbox_send, outbox_send_many
from tests.worker import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_relay")]


def message(name: str = "tests.outbox.nothing") -> Signature[Any]:
    return signature(name, args=("x",), queue="orders")


@pytest.fixture
def published(monkeypatch) -> list[str]:
    """What the relay hands to the broker, by row name (the broker itself is tested elsewhere)."""
    sent: list[str] = []
    monkeypatch.setattr(relay, "_apply", lambda row: sent.append(row.name))
    return sent


def test_a_message_is_written_only_with_its_transaction():
    with pytest.raises(RuntimeError):
        outbox_send(message=message(), shard="a")

    def change_that_fails() -> None:
        with transaction.atomic():
            outbox_send(message=message(), shard="a")
            raise ZeroDivisionError  # the change it announced rolls back

    with pytest.raises(ZeroDivisionError):
        change_that_fails()

    assert not OutboxMessage.objects.exists()


def test_the_relay_sends_each_shard_in_order_and_a_delayed_message_when_due(published, monkeypatch):
    rounds = count_rounds(monkeypatch)
    with transaction.atomic():
        outbox_send(message=message("first"), shard="order-1")
        outbox_send(message=message("later"), shard="order-1", delay=60)
        outbox_send(message=message("second"), shard="order-1")
        outbox_send(message=message("other"), shard="order-2")

    assert relay.relay_due() == 3
    assert published == ["first", "second", "other"]
    assert len(rounds) == 1  # a shard's due messages go in one round, behind its head
    assert OutboxMessage.objects.filter(sent_at__isnull=True).get().name == "later"

    OutboxMessage.objects.filter(name="later").update(available_at=timezone.now() - timedelta(seconds=1))
    assert relay.relay_due() == 1
    assert published[-1] == "later"


def test_a_shard_waits_behind_its_unsent_head():
    with transaction.atomic():
        outbox_send(message=message("head"), shard="order-1")
        outbox_send(message=message("next"), shard="order-1")

    assert [row.name for row in relay._heads(limit=10)] == ["head"]


def broker_that_fails(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A broker that refuses the row named "cannot be sent" (it cannot be serialized) and is
    down for the one named "broker gone"; what it accepts, by row name."""
    sent: list[str] = []

    def publish(row: relay.Due) -> None:
        if row.name == "cannot be sent":
            raise TypeError("cannot serialize")
        if row.name == "broker gone":
            raise ConnectionRefusedError("broker down")
        sent.append(row.name)

    monkeypatch.setattr(relay, "_apply", publish)
    return sent


def test_a_head_that_fails_to_publish_holds_back_its_shard_only(monkeypatch):
    sent = broker_that_fails(monkeypatch)
    with transaction.atomic():
        outbox_send(message=message("cannot be sent"), shard="order-1")
        outbox_send(message=message("behind it"), shard="order-1")
        outbox_send(message=message("other order"), shard="order-2")

    relay.relay_due(rounds=1)

    assert sent == ["other order"]
    assert set(OutboxMessage.objects.filter(sent_at__isnull=True).values_list("name", flat=True)) == {
        "cannot be sent",
        "behind it",
    }


def count_rounds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per round of the relay (a transaction that claims rows)."""
    rounds: list[int] = []
    claim = relay._claim

    def counted(limit: int) -> list[relay.Due]:
        rounds.append(limit)
        return claim(limit)

    monkeypatch.setattr(relay, "_claim", counted)
    return rounds


@pytest.fixture
def worker_process() -> Any:
    """This process publishes right after its commits, as a worker's does."""
    relay.publish_on_commit(True)
    yield
    relay.publish_on_commit(False)


def test_a_commit_publishes_its_own_messages_at_once_in_order(published, worker_process, monkeypatch):
    rounds: list[list[int] | None] = []
    relay_due = relay.relay_due
    monkeypatch.setattr(relay, "relay_due", lambda **kw: rounds.append(kw.get("ids")) or relay_due(**kw))
    with transaction.atomic():
        outbox_send(message=message("a written by someone else"), shard="order-2")
    OutboxMessage.objects.update(sent_at=None)  # as if its own publish had not happened yet
    published.clear()
    rounds.clear()

    with transaction.atomic():
        outbox_send(message=message("first"), shard="order-1")
        outbox_send(message=message("second"), shard="order-1")
        outbox_send(message=message("later"), shard="order-1", delay=60)

    assert len(rounds) == 1  # one publish per transaction, however many messages it wrote
    assert published == ["first", "second"]  # its own, in order, in one round
    waiting = OutboxMessage.objects.filter(sent_at__isnull=True).order_by("id").values_list("name", flat=True)
    assert list(waiting) == ["a written by someone else", "later"]  # the relay thread's


def test_messages_sent_together_are_one_insert_and_go_out_in_the_order_given(published, worker_process):
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        rows = outbox_send_many(messages=[message("to inventory"), message("to notifications")], shard="order-1")
        outbox_send(message=message("after them"), shard="order-1")

    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 2  # the two messages sent together, then the third
    assert [row.name for row in rows] == ["to inventory", "to notifications"]
    assert published == ["to inventory", "to notifications", "after them"]


def test_a_commit_leaves_its_message_behind_an_unsent_head_of_its_shard(published, worker_process):
    with transaction.atomic():
        outbox_send(message=message("head"), shard="order-1")
    OutboxMessage.objects.update(sent_at=None)  # the head's publish failed: the relay will retry it
    published.clear()

    with transaction.atomic():
        outbox_send(message=message("next"), shard="order-1")

    assert published == []
    assert relay.relay_due() == 2
    assert published == ["head", "next"]


def test_on_postgresql_a_commit_that_leaves_its_messages_to_the_relay_wakes_it(published, settings):
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL can wake the relay; elsewhere its sweep alone picks rows up")
    settings.OUTBOX_POLL_SECONDS = 30  # the sweep would come too late to be what sends it
    thread = relay.RelayThread()
    thread.start()
    try:
        wait_until(lambda: thread.wakeups.connection is not None, timeout=5)  # listening, its first sweep done
        time.sleep(0.1)

        with transaction.atomic():  # a web process: it writes the row and leaves it to the relay
            outbox_send(message=message("placed"), shard="order-1")

        wait_until(lambda: published == ["placed"], timeout=5)
        assert OutboxMessage.objects.get().sent_at is not None
    finally:
        thread.stop()
    assert not thread.is_alive()  # its 30 s wait ended when it was told to stop


def test_on_postgresql_wake_ups_that_came_during_a_sweep_make_one_sweep_after_it(monkeypatch, settings):
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL wakes the relay")
    settings.OUTBOX_POLL_SECONDS = 30  # every sweep below is a wake-up's
    thread = relay.RelayThread()
    thread.start()
    try:
        wait_until(lambda: thread.wakeups.connection is not None, timeout=5)
        time.sleep(0.1)
        sweeps: list[int] = []
        busy, go_on = threading.Event(), threading.Event()

        def slow_sweep(**kwargs: Any) -> int:
            sweeps.append(1)
            busy.set()
            go_on.wait(5)
            return 0

        monkeypatch.setattr(relay, "relay_due", slow_sweep)
        relay.wake_relay()  # outside a transaction: at once
        assert busy.wait(5)
        for _ in range(5):  # five commits, while the relay sweeps
            relay.wake_relay()
        time.sleep(0.1)
        go_on.set()
        time.sleep(0.3)

        assert len(sweeps) == 2  # the one they came during, and one for all five
    finally:
        thread.stop()


def test_on_postgresql_orders_placed_while_the_broker_is_down_do_not_cut_its_back_off(monkeypatch, settings):
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL wakes the relay")
    settings.OUTBOX_POLL_SECONDS = 30  # so its back-off is 5 s: every publish tried below is a wake-up's
    tried: list[str] = []

    def down(row: relay.Due) -> None:
        tried.append(row.name)
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(relay, "_apply", down)
    thread = relay.RelayThread()
    thread.start()
    try:
        wait_until(lambda: thread.wakeups.connection is not None, timeout=5)
        time.sleep(0.1)
        with transaction.atomic():
            outbox_send(message=message("first"), shard="order-1")
        wait_until(lambda: tried == ["first"], timeout=5)  # woken, it found the broker down: it backs off

        for n in range(5):
            with transaction.atomic():
                outbox_send(message=message(f"order {n}"), shard=f"order-{n + 2}")
        time.sleep(0.5)

        assert tried == ["first"]  # no order placed meanwhile made it try the broker again
    finally:
        thread.stop()
    assert not thread.is_alive()  # told to stop, it does not wait out its back-off


def test_a_broker_that_is_down_leaves_every_message_for_later(monkeypatch):
    def down(row: OutboxMessage) -> None:
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(relay, "_apply", down)
    with transaction.atomic():
        outbox_send(message=message(), shard="order-1")

    with pytest.raises(relay.BrokerDown):
        relay.relay_due()
    row = OutboxMessage.objects.get()
    assert (row.sent_at, row.parked_at, row.attempts) == (None, None, 0)


def test_a_message_that_can_never_be_sent_is_parked_with_its_error(monkeypatch, settings):
    def poison(row: OutboxMessage) -> None:
        raise TypeError("cannot serialize")

    monkeypatch.setattr(relay, "_apply", poison)
    with transaction.atomic():
        outbox_send(message=message(), shard="order-1")

    for _ in range(settings.OUTBOX_MAX_ATTEMPTS):
        relay.relay_due()

    row = OutboxMessage.objects.get()
    assert row.parked_at is not None
    assert row.attempts == settings.OUTBOX_MAX_ATTEMPTS
    assert "cannot serialize" in row.last_error
    assert relay.relay_due() == 0


def test_a_commit_whose_own_publish_fails_leaves_what_did_not_go_out_unsent(worker_process, monkeypatch):
    # given a worker's transaction whose rows meet a message that cannot be serialized, then a
    # broker that goes down (the rows are marked sent as they are claimed: the failures unmark)
    sent = broker_that_fails(monkeypatch)

    # when it commits
    with transaction.atomic():
        outbox_send(message=message("sent"), shard="order-1")
        outbox_send(message=message("cannot be sent"), shard="order-1")
        outbox_send(message=message("behind it"), shard="order-1")
        outbox_send(message=message("other order"), shard="order-2")
        outbox_send(message=message("broker gone"), shard="order-3")
        outbox_send(message=message("after the outage"), shard="order-4")

    # then only what reached the broker is marked sent; the rest waits for the relay thread, the
    # unsendable row with its first failed attempt counted, and its shard behind it
    assert sent == ["sent", "other order"]
    rows = {row.name: row for row in OutboxMessage.objects.all()}
    assert {name for name, row in rows.items() if row.sent_at is not None} == {"sent", "other order"}
    assert (rows["cannot be sent"].attempts, rows["cannot be sent"].parked_at) == (1, None)
    assert "cannot serialize" in rows["cannot be sent"].last_error
    assert all(rows[name].attempts == 0 for name in ("behind it", "broker gone", "after the outage"))


def test_a_database_that_returns_no_ids_from_a_multi_row_insert_gets_one_insert_each(published, worker_process):
    features = connection.features
    with mock.patch.object(type(features), "can_return_rows_from_bulk_insert", False), transaction.atomic():
        rows = outbox_send_many(messages=[message("to inventory"), message("to notifications")], shard="order-1")

    assert all(row.pk for row in rows)
    assert published == ["to inventory", "to notifications"]


def test_what_celery_shows_of_a_message_names_its_row_not_its_payload(monkeypatch):
    options: list[dict[str, Any]] = []
    monkeypatch.setattr(Signature, "apply_async", lambda self, *args, **kwargs: options.append(kwargs))
    with transaction.atomic():
        row = outbox_send(message=signature("t", args=({"line1": "1 Private Road"},)), shard="order-1")

    assert relay.relay_due() == 1
    assert options[0]["argsrepr"] == f"(outbox message {row.pk}, shard order-1)"  # Flower, logs
    assert options[0]["kwargsrepr"] == "{}"


def test_on_postgresql_the_relay_sweeps_on_its_kept_connection_without_a_health_check(monkeypatch, settings):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's health check is no query")
    # given a relay sweeping every 20 ms, on a connection it keeps (CONN_MAX_AGE) and whose
    # health Django would check with a SELECT 1 before each sweep
    settings.OUTBOX_POLL_SECONDS = 0.02
    checked: list[bool] = []
    wrapper = type(connections["default"])
    usable = wrapper.is_usable

    def counted(self: Any) -> bool:
        answer = bool(usable(self))
        if threading.current_thread().name == "outbox-relay":
            checked.append(answer)
        return answer

    monkeypatch.setattr(wrapper, "is_usable", counted)
    sweeps: list[int] = []
    sweep = relay.relay_due
    monkeypatch.setattr(relay, "relay_due", lambda **kwargs: sweeps.append(sweep(**kwargs)) or 0)
    thread = relay.RelayThread()
    thread.start()
    try:
        # when it sweeps ten times while the server says nothing
        wait_until(lambda: len(sweeps) >= 10, timeout=10, what="ten sweeps")
    finally:
        thread.stop()

    # then no sweep asked the server first (core.connections)
    assert checked == []
