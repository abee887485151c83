"""Events a broker lost after the relay handed them over are published again (emails included);
events still waiting in their queue are not."""

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import Heartbeat
from core.tasks import heartbeats_send
from events.models import InboxEntry
from events.services import events_redeliver_unhandled
from notifications.models import Notification
from orders.services import OrderItem, order_place
from outbox.models import OutboxMessage
from tests.factories import ProductFactory
from tests.worker import SagaWorker, purge_broker, wait_for_terminal, wait_until

AFTER, WITHIN = timedelta(minutes=5), timedelta(hours=6)


def served(queue: str = "notifications", *, minutes_ago: float = 0) -> None:
    """A worker took a heartbeat from ``queue`` then: what was published to it a while before has left it."""
    Heartbeat.objects.update_or_create(
        name=f"queue:{queue}", defaults={"seen_at": timezone.now() - timedelta(minutes=minutes_ago)}
    )


def place_and_lose(customer, *, minutes_ago: int = 10) -> OutboxMessage:
    """An order whose messages were all published, then lost by the broker; its email's message."""
    item = OrderItem(ProductFactory.create().sku, 1)
    order = order_place(user=customer, items=[item], shipping_address={}, payment_token="tok_visa")
    messages = OutboxMessage.objects.filter(shard=str(order.pk))
    messages.update(sent_at=timezone.now() - timedelta(minutes=minutes_ago))
    return messages.get(name="notifications.handle_event")


def test_an_email_event_the_broker_lost_is_published_again(customer):
    email = place_and_lose(customer)
    served()  # the queue has moved past it

    assert events_redeliver_unhandled(after=AFTER, within=WITHIN) == 1

    email.refresh_from_db()
    assert email.sent_at is None  # due again: the relay sends it
    # the orchestrator's command is not an event: the saga's sweeper re-drives that one
    assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 1


def test_a_handled_event_or_one_still_in_time_is_left_alone(customer):
    email = place_and_lose(customer)
    consumer, envelope, _ = email.message["args"]
    InboxEntry.objects.create(consumer=consumer, event_id=envelope["id"], event_name="order.placed", saga_id="x")
    place_and_lose(customer, minutes_ago=1)  # a second order, whose email may still be on its way
    served()

    assert events_redeliver_unhandled(after=AFTER, within=WITHIN) == 0


def test_only_the_latest_delivery_of_an_event_counts(customer):
    # given an email whose first delivery failed and whose retry is scheduled
    email = place_and_lose(customer)
    retry = OutboxMessage.objects.create(
        shard=email.shard, name=email.name, message=email.message, available_at=timezone.now() + timedelta(minutes=1)
    )
    served()

    assert events_redeliver_unhandled(after=AFTER, within=WITHIN) == 0
    assert OutboxMessage.objects.filter(sent_at__isnull=True).get() == retry


@pytest.mark.parametrize("last_served", [None, 11.0, 9.5])
def test_an_event_its_queue_has_not_moved_past_is_left_waiting(customer, last_served):
    # given an email handed to the broker 10 minutes ago, never handled, and a queue whose last
    # heartbeat was served never, before it, or too soon after it to have been sent after it
    place_and_lose(customer)
    if last_served is not None:
        served(minutes_ago=last_served)

    # then it is taken to wait in its queue: a copy would only queue up behind it
    assert events_redeliver_unhandled(after=AFTER, within=WITHIN) == 0
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exclude(name__startswith="orders.").exists()


@pytest.mark.saga
@pytest.mark.parametrize("coordination", ["orchestration"])  # the emails are choreographed in both modes
def test_a_backlog_gets_no_copies_and_what_the_broker_lost_is_sent_once_its_queue_moves(
    saga, customer, settings, tmp_path, coordination
):
    settings.HEALTH_WORKER_STALE_SECONDS = 1.0
    now_on = timedelta(0)  # no wait: only the queues' heartbeats decide
    # given a worker on every queue but notifications: the orders' emails wait there
    saga.stop()
    queues = [queue for queue in settings.SHOP_QUEUES if queue != "notifications"]
    others = SagaWorker(tmp_path / "others.log", concurrency=2, queues=queues)
    others.start()
    mailer = SagaWorker(tmp_path / "mailer.log", concurrency=1, queues=["notifications"])
    try:
        items = [OrderItem(ProductFactory.create().sku, 1)]
        orders = [
            order_place(user=customer, items=items, shipping_address={}, payment_token="tok_visa") for _ in range(2)
        ]
        wait_for_terminal([order.pk for order in orders])
        emails = OutboxMessage.objects.filter(name="notifications.handle_event")
        wait_until(lambda: emails.filter(sent_at__isnull=False).count() == 4, what="the emails to reach the broker")
        heartbeats_send(["notifications"], expires=settings.HEALTH_WORKER_STALE_SECONDS)  # behind them
        heartbeats_send(queues, expires=settings.HEALTH_WORKER_STALE_SECONDS)
        wait_until(lambda: Heartbeat.objects.filter(name__startswith="queue:").count() == len(queues), what="beats")

        # when the redelivery runs while they wait: no copy joins the backlog
        assert events_redeliver_unhandled(after=now_on, within=WITHIN) == 0
        # and when the broker loses them (a Redis restarted without persistence), and a worker
        # serves the queue again
        purge_broker()
        mailer.start()
        heartbeats_send(["notifications"], expires=settings.HEALTH_WORKER_STALE_SECONDS)
        wait_until(lambda: Heartbeat.objects.filter(name="queue:notifications").exists(), what="the mailer's beat")
        time.sleep(settings.HEALTH_WORKER_STALE_SECONDS)  # what it published since is behind the beat

        # then each is sent again, and each order's two emails are sent once
        assert events_redeliver_unhandled(after=now_on, within=WITHIN) == 4
        wait_until(lambda: Notification.objects.count() == 4, what="the emails sent again")
        assert events_redeliver_unhandled(after=now_on, within=WITHIN) == 0
        sent = Counter(Notification.objects.values_list("order_id", "kind"))
        assert sorted(sent.values()) == [1, 1, 1, 1] and {order_id for order_id, _ in sent} == {o.pk for o in orders}
    finally:
        SagaWorker.stop_all([others, mailer])
