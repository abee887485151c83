"""Telling customers what became of their orders: one email per order event, in both modes.

Exactly once, and what that honestly means here
-----------------------------------------------
``notification_send`` runs inside the transaction in which the inbox records the event
(a non-step subscription, ``events.services.event_handle``), and sends the email before
that transaction commits. So:

* a redelivered event finds its inbox entry and sends nothing (and the ``Notification`` row's
  unique ``event_id`` refuses a second one even if two copies race);
* a mail server that refuses or is unreachable raises: the transaction rolls back, nothing is
  recorded, and the inbox delivers the event again with backoff (parked with its error after
  ``EVENTS_MAX_ATTEMPTS``, as a parked inbox entry with its error) — never recorded as sent
  when it was not;
* a crash (or a failed commit) after the mail server accepted the message and before the
  commit delivers the event again and sends the email a second time. That window is the
  SMTP reply to the commit, a few milliseconds; we accept one duplicate in it rather than
  risk losing an email (at-least-once in that window, once otherwise). Each email carries a
  ``Message-ID`` derived from the event id, so a re-send is the same message to the mail
  systems that collapse duplicates by it.

The price of sending inside the transaction: it stays open for the SMTP round trip (bounded by
``EMAIL_TIMEOUT``), which on the embedded SQLite holds the database's write lock meanwhile.
A two-phase record (commit "sending", send, commit "sent") would only move the window, and
would have to choose between re-sending and dropping an email whose fate is unknown.

Nothing here talks to the broker: the events come through the outbox (``events.services``),
so an email is never lost to a broker outage; this service publishes nothing.
"""

from decimal import Decimal, InvalidOperation
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.verification import customer_to_email
from core.templatetags.shop_tags import order_number
from events.registry import Event
from notifications.models import Notification
from sagas.ledger import get_ledger

SERVICE = "notifications"

KINDS = {
    "order.placed": Notification.Kind.PLACED,
    "order.completed": Notification.Kind.COMPLETED,
    "order.cancelled": Notification.Kind.CANCELLED,
    "order.needs_attention": Notification.Kind.NEEDS_ATTENTION,
    "order.held": Notification.Kind.HELD,
}

SUBJECTS = {
    Notification.Kind.PLACED: "We have your order #{number}",
    Notification.Kind.COMPLETED: "Your order #{number} is on its way",
    Notification.Kind.CANCELLED: "Your order #{number} is cancelled",
    Notification.Kind.NEEDS_ATTENTION: "Your order #{number}: our staff are on it",
    Notification.Kind.HELD: "We are checking your order #{number}",
}

# Why an order was cancelled, in the customer's words. The service keeps its own copy (it
# imports nothing from orders); the order page says the same in orders/presentation.py.
REASONS = {
    "out_of_stock": "Some items ran out before we could set them aside for you.",
    "payment_declined": "Your card issuer declined the payment.",
    "payment_failed": "We could not reach the payment provider, so we did not go ahead.",
    "shipping_failed": "The carrier could not accept the delivery address.",
    "customer_request": "You cancelled this order.",
    "staff_request": "Our staff cancelled this order.",
    "expired": "We could not start processing the order in time.",
    "risk_rejected": "We could not accept this order after checking it.",
}


def notification_send(*, event: Event) -> Notification:
    """Email the customer of ``event``'s order what happened (placed, completed, cancelled,
    needs attention), and record it as a ``Notification``.

    Side effects: one email through Django's email backend (``EMAIL_URL``), one
    ``Notification`` row, one line in the order's journal. A customer who is gone or has no
    email address gets nothing: the row says ``skipped``; one who signed up and has not proven
    the address theirs (``accounts.verification``) gets nothing either: ``unverified``. Call it
    inside the transaction that records the event in the inbox (see the module's docstring for
    the window between the mail server accepting and that commit). Nothing to compensate: an email cannot be unsent.
    """
    kind = KINDS[event.name]
    order_id = event.context["order_id"]
    user_id = event.context.get("user_id")
    subject = SUBJECTS[kind].format(number=order_number(order_id))
    customer, verified = customer_to_email(user_id=user_id) if user_id is not None else (None, False)
    recipient = (customer.email or "") if customer is not None else ""
    if customer is None or not recipient:
        status = Notification.Status.SKIPPED
    elif not verified:
        status = Notification.Status.UNVERIFIED  # anyone can sign up with anyone's address
    else:
        status = Notification.Status.SENT
    sending = status == Notification.Status.SENT
    # ``sent_at`` is written with the row, before the send: the row commits only if the send
    # succeeds (one transaction), so it never says sent for an email that was not.
    notification = Notification.objects.create(
        event_id=event.id,
        order_id=order_id,
        user_id=user_id,
        kind=kind,
        status=status,
        recipient=recipient,
        subject=subject,
        sent_at=timezone.now() if sending else None,
    )
    if sending:
        facts = _facts(event, kind, customer)
        message = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string(f"notifications/{kind}.txt", facts),
            to=[recipient],
            headers={"Message-ID": _message_id(event)},
        )
        message.attach_alternative(render_to_string(f"notifications/{kind}.html", facts), "text/html")
        message.send()
    _journal(order_id, name=f"email.{notification.status}", detail=_journal_detail(kind, status, recipient))
    return notification


def _journal_detail(kind: Notification.Kind, status: str, recipient: str) -> str:
    if status == Notification.Status.SKIPPED:
        return f"{kind.label}: no email address to send it to"
    if status == Notification.Status.UNVERIFIED:
        return f"{kind.label}: not sent, {recipient} is not verified yet"
    return f"{kind.label} to {recipient}"


def _facts(event: Event, kind: str, customer: Any) -> dict[str, Any]:
    """What the templates say: the order as the event carries it, and this kind's news."""
    context, data = event.context, event.data
    currency = context.get("currency", settings.SHOP_CURRENCY)
    refunded = _decimal(data.get("refunded"))
    return {
        "kind": kind,
        "customer_name": customer.get_full_name() or customer.get_username(),
        "order_id": context["order_id"],
        "order_number": order_number(context["order_id"]),
        "total": _money(_decimal(context.get("total")), currency),
        "lines": context.get("lines", []),
        "shipping_address": context.get("shipping_address"),
        "carrier": data.get("carrier", ""),
        "tracking_number": data.get("tracking_number", ""),
        "reason": REASONS.get(data.get("reason") or "", ""),
        "refunded": _money(refunded, currency) if refunded else "",
        # The inventory service puts the lines back into the cart for these (shop.handlers).
        "cart_restored": data.get("reason") in ("payment_declined", "payment_failed"),
        "shop_name": _shop_name(),
    }


def _journal(order_id: str, *, name: str, detail: str) -> None:
    """A line in the order's journal, through the saga's ledger (not the orders app), without
    the order's lock: an email waits for no step, and no step waits for an email. An order that
    is gone gets none: the email still went, and the Notification row says so."""
    get_ledger().note(order_id, service=SERVICE, kind="action", name=name, detail=detail)


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def _money(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return ""
    return f"${amount:.2f}" if currency == "USD" else f"{amount:.2f} {currency}"


def _sender_domain() -> str:
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "localhost"


def _shop_name() -> str:
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[0] or "The shop"


def _message_id(event: Event) -> str:
    """The same for every send of one event, so mail systems can tell a re-send for what it is."""
    return f"<notification.{event.id}@{_sender_domain()}>"
