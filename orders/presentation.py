"""What an order's state means to the customer who placed it, in plain language.

The order page leads with this; the saga's own vocabulary (steps, attempts, provider errors)
stays in the folded technical timeline below it.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from orders.journal import step_succeeded
from orders.models import ActorKind, Order, OrderEvent, Status
from orders.plan import HELD_STATUSES, ORDER_SAGA

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
# A failed payment leaves nothing to undo but the order: the customer's next move is another card.
PAYMENT_REASONS = frozenset({"payment_declined", "payment_failed"})
_CHARGED = {"succeeded", "refunded", "refund_failed"}


@dataclass(frozen=True)
class CustomerStatus:
    headline: str
    tone: str  # progress | done | undoing | cancelled | attention: the colour of the panel
    reason: str = ""
    next_steps: list[str] = field(default_factory=list)


def order_customer_status(order: Order) -> CustomerStatus:
    """The headline, why (for a cancelled order) and what happens next, for the order page."""
    payment = getattr(order, "payment", None)  # None until the saga charges
    shipment = getattr(order, "shipment", None)
    charged = payment.amount if payment is not None and payment.status in _CHARGED else None
    refunded = payment.refunded_amount if payment is not None and payment.refunded_amount else None
    reason = REASONS.get(order.cancellation_reason or "", "")
    status = order.status
    live = "This page updates by itself."
    if status == Status.PENDING:
        return CustomerStatus(
            "We have your order",
            "progress",
            next_steps=["We are setting your items aside.", "Then we charge your payment and ship your parcel.", live],
        )
    if status == Status.RESERVED:
        return CustomerStatus(
            "Your items are set aside",
            "progress",
            next_steps=["We are charging your payment now.", "Then we hand your parcel to the carrier.", live],
        )
    if status in HELD_STATUSES:  # a person checks the order before it goes on (orders/plan.py)
        return CustomerStatus(
            "We are checking your order",
            "progress",
            next_steps=[
                "Your items are set aside and you have not been charged.",
                "A member of our team looks at your order, usually within a day; we will email you.",
                live,
            ],
        )
    if status == Status.PAID:
        return CustomerStatus(
            "Payment received",
            "progress",
            next_steps=[f"We charged {_money(order.total)}.", "We are handing your parcel to the carrier.", live],
        )
    if status == Status.COMPLETED:
        steps = ["Your parcel is with the carrier."]
        if shipment is not None and shipment.tracking_number:
            steps.append(f"Track it with {shipment.carrier or 'the carrier'}: {shipment.tracking_number}.")
        return CustomerStatus("Your order is on its way", "done", next_steps=steps)
    if status == Status.COMPENSATING:
        steps = [f"We are refunding your payment of {_money(charged)}." if charged else "You have not been charged."]
        steps += ["Your items go back on the shelf.", live]
        return CustomerStatus("We are cancelling your order", "undoing", reason, steps)
    if status == Status.CANCELLED:
        if refunded:
            money = f"We refunded {_money(refunded)} to your payment method. Banks usually show it within a few days."
        elif charged:
            money = f"We are refunding your payment of {_money(charged)}."
        else:
            money = "You were not charged."
        return CustomerStatus("Your order is cancelled", "cancelled", reason, [money])
    # needs_attention: a compensation kept failing; the customer must know about their money.
    if charged and not refunded:
        money = (
            f"We could not refund your payment of {_money(charged)} automatically. Our staff have been told "
            "and will refund it by hand: you do not need to do anything."
        )
    else:
        money = (
            "Something went wrong while we undid your order. Our staff have been told and are putting it "
            "right: you will not pay for an order we do not ship."
        )
    return CustomerStatus("Your order is cancelled; our staff are on it", "attention", reason, [money])


def order_status_label(order: Order) -> str:
    """The order's one status badge, in a customer's words (never the saga's own status names).

    ``needs_attention`` reads as cancelled: the order is over for the customer, and the panel
    beside the badge says that staff are putting the money right. ``compensating`` also covers a
    cancelled order refunding money that landed late, so it names the refund when there is one.
    """
    status = order.status
    if status == Status.COMPENSATING:
        return "Refunding" if _charged(order) and not _refunded(order) else "Cancelling"
    return _STATUS_LABELS.get(status, "In progress")


def order_status_tone(order: Order) -> str:
    """The badge's colour, by what the status means to the customer (a CSS class suffix)."""
    return order_customer_status(order).tone


_STATUS_LABELS = {
    Status.PENDING: "Received",
    Status.RESERVED: "Processing",
    "in_review": "Being checked",
    Status.PAID: "Paid",
    Status.COMPLETED: "Shipped",
    Status.CANCELLED: "Cancelled",
    Status.NEEDS_ATTENTION: "Cancelled",
}


def payment_label(order: Order) -> str:
    """What became of the customer's money, in a sentence fragment."""
    payment = getattr(order, "payment", None)
    if payment is None:
        return "Not charged"
    return {
        "pending": "Being charged",
        "succeeded": f"Charged {_money(payment.amount)}",
        "declined": "Declined by your card issuer: nothing was charged",
        "failed": "Not charged",
        "refunded": f"Refunded {_money(payment.refunded_amount)}",
        "refund_failed": f"Charged {_money(payment.amount)}: our staff will refund it by hand",
    }.get(payment.status, "Not charged")


def shipment_label(order: Order) -> str:
    """Where the parcel is, in a customer's words; a shipment being undone is not "on its way"."""
    shipment = getattr(order, "shipment", None)
    if shipment is None:
        return "Not handed to the carrier"
    if shipment.status == "created":
        if order.status in (Status.COMPENSATING, Status.CANCELLED, Status.NEEDS_ATTENTION):
            return "Booked with the carrier, being called off"
        return "With the carrier"
    return {
        "pending": "Being booked with the carrier",
        "rejected": "The carrier could not accept the delivery address",
        "cancelled": "Called off: nothing will be delivered",
    }.get(shipment.status, "Not handed to the carrier")


@dataclass(frozen=True)
class Banner:
    text: str
    tone: str  # success | error: the colour of the message


def order_placed_banner(order: Order) -> Banner:
    """What the page says right after checkout, true for the order's state when it is shown.

    A declined card is known within a second, often before the order page first loads, so the
    banner follows the order rather than assuming the checkout went through.
    """
    reason = order.cancellation_reason or ""
    if order.status in (Status.COMPENSATING, Status.CANCELLED, Status.NEEDS_ATTENTION):
        if reason == "payment_declined":
            return Banner("Your card was declined, so nothing was charged.", "error")
        if reason == "payment_failed":
            return Banner("We could not reach the payment provider, so nothing was charged.", "error")
        return Banner("We could not complete your order.", "error")
    return Banner("Thank you! Your order is placed; watch it progress below.", "success")


def order_lines_summary(order: Order) -> str:
    """ "2 times Enamel mug, 1 times Steel bottle" (with the times sign): the order by units and name."""
    return ", ".join(f"{line.quantity} \N{MULTIPLICATION SIGN} {line.name}" for line in order.lines.all())


def order_cancellation_words(order: Order) -> str:
    return REASONS.get(order.cancellation_reason or "", "")


def order_units(order: Order) -> int:
    return sum(line.quantity for line in order.lines.all())


@dataclass(frozen=True)
class JournalLine:
    who: str
    what: str


def order_journal_line(event: OrderEvent) -> JournalLine:
    """One line of the folded technical timeline in a customer's words.

    The journal's raw lines name steps, events and staff members; the customer reads which
    service acted and what it did, and "our staff" for any member of staff.
    """
    who = _WHO.get(event.service, event.service.replace("_", " ").capitalize())
    if event.actor_kind == ActorKind.STAFF:
        who = "Our staff"
    if event.kind == OrderEvent.Kind.STATUS:
        what = _STATUS_WORDS.get(event.to_status, "updated the order")
        if event.to_status == Status.COMPENSATING and event.from_status == Status.CANCELLED:
            what = "started refunding a payment that arrived late"
        if event.actor_kind == ActorKind.CUSTOMER:
            what += " at your request"
        return JournalLine(who, what)
    if event.kind == OrderEvent.Kind.EVENT:
        return JournalLine(who, _EVENT_WORDS.get(event.name, "passed on an update"))
    if step_succeeded(event.kind, event.message):  # orchestrated: the participant's own line
        return JournalLine(who, _STEP_WORDS.get(event.name.partition(":")[0], "did its part"))
    if event.kind == OrderEvent.Kind.COMPENSATION:
        done, not_yet = _UNDO_WORDS.get(event.name, ("undid its part", "could not undo its part yet"))
        return JournalLine(who, done if event.message.startswith("succeeded") or not event.message else not_yet)
    if event.actor_kind == ActorKind.CUSTOMER:
        return JournalLine("You", "placed the order" if event.message.startswith("Order placed") else "acted")
    if event.service == "notifications":
        return JournalLine(who, "emailed you" if event.name == "email.sent" else "could not email you yet")
    if event.actor_kind == ActorKind.STAFF:
        return JournalLine(who, "restarted the order" if event.message == "Saga retried" else "looked after the order")
    return JournalLine(who, "nudged the order along")


_WHO = {
    "orders": "Orders",
    "inventory": "Inventory",
    "payments": "Payments",
    "risk": "Risk",
    "shipping": "Shipping",
    "notifications": "Notifications",
    "staff": "Our staff",
    "sweeper": "Our system",
}
_STATUS_WORDS = {
    Status.PENDING: "took your order",
    Status.RESERVED: "set your items aside",
    "in_review": "held the order for a check",
    Status.PAID: "took the payment",
    Status.COMPLETED: "handed the parcel to the carrier",
    Status.COMPENSATING: "started cancelling the order",
    Status.CANCELLED: "cancelled the order",
    Status.NEEDS_ATTENTION: "asked our staff to step in",
}
_EVENT_WORDS = {
    "order.placed": "announced your order",
    "order.completed": "announced that your order is on its way",
    "order.cancelled": "announced that your order is cancelled",
    "order.needs_attention": "asked our staff to step in",
    "order.compensating": "asked every service to undo its part",
    "order.redriven": "nudged the order along",
    "stock.reserved": "set your items aside",
    "stock.refused": "found some items sold out",
    "stock.released": "put your items back on the shelf",
    "risk.approved": "checked your order",
    "risk.rejected": "could not accept your order",
    "payment.charged": "took the payment",
    "payment.declined": "heard that the card was declined",
    "payment.failed": "could not reach the payment provider",
    "payment.refunded": "refunded the payment",
    "shipment.created": "booked the carrier",
    "shipment.rejected": "heard that the carrier cannot deliver to the address",
    "shipment.cancelled": "called off the delivery",
}
# A step's success in the words of the event that announces it when choreographed.
_STEP_WORDS = {step.name: _EVENT_WORDS.get(step.succeeded, "did its part") for step in ORDER_SAGA.steps}
_UNDO_WORDS = {
    "release_stock": ("put your items back on the shelf", "could not put your items back yet"),
    "refund_payment": ("refunded your payment", "could not refund your payment yet"),
    "cancel_shipment": ("called off the delivery", "could not call off the delivery yet"),
}


def _charged(order: Order) -> Decimal | None:
    payment: Any = getattr(order, "payment", None)
    return payment.amount if payment is not None and payment.status in _CHARGED else None


def _refunded(order: Order) -> Decimal | None:
    payment: Any = getattr(order, "payment", None)
    return payment.refunded_amount if payment is not None and payment.refunded_amount else None


def _money(amount: Decimal | None) -> str:
    return f"${amount}"
