"""What the notifications service reacts to, in both coordination modes (the hybrid, contract §7):
how an order began, when a person checks it before it goes on, and how it ended, each told to
the customer by email once."""

from events.registry import BOTH_MODES, Event, subscribe
from notifications import services


@subscribe(
    "order.placed",
    "order.completed",
    "order.cancelled",
    "order.needs_attention",
    "order.held",
    service="notifications",
    modes=BOTH_MODES,
)
def email_customer(event: Event) -> None:
    # Runs inside the transaction that records the event in the inbox (events.services).
    services.notification_send(event=event)
