"""Events a broker lost after the relay handed them over are published again (emails included)."""

from datetime import timedelta

from django.utils import timezone

from events.models import InboxEntry
from events.services import events_redeliver_unhandled
from orders.services import OrderItem, order_place
from outbox.models import OutboxMessage
from tests.factories import ProductFactory

AFTER, WITHIN = timedelta(minutes=5), timedelta(hours=6)


def place_and_lose(customer, *, minutes_ago: int = 10) -> OutboxMessage:
    """An order whose messages were all published, then lost by the broker; its email's message."""
    item = OrderItem(ProductFactory.create().sku, 1)
    order = order_place(user=customer, items=[item], shipping_address={}, payment_token="tok_visa")
    messages = OutboxMessage.objects.filter(shard=str(order.pk))
    messages.update(sent_at=timezone.now() - timedelta(minutes=minutes_ago))
    return messages.get(name="notifications.handle_event")


def test_an_email_event_the_broker_lost_is_published_again(customer):
    email = place_and_lose(customer)

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

    assert events_redeliver_unhandled(after=AFTER, within=WITHIN) == 0


def test_only_the_latest_delivery_of_an_event_counts(customer):
    # given an email whose first delivery failed and whose retry is scheduled
    email = place_and_lose(customer)
    retry = OutboxMessage.objects.create(
        shard=email.shard, name=email.name, message=email.message, available_at=timezone.now() + timedelta(minutes=1)
    )

    assert events_redeliver_unhandled(after=AFTER, within=WITHIN) == 0
    assert OutboxMessage.objects.filter(sent_at__isnull=True).get() == retry
