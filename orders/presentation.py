"""What an order's state means to the customer who placed it, in plain language.

The order page leads with this; the saga's own vocabulary (steps, attempts, provider errors)
stays in the folded technical timeline below it.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from orders.models import Order, Status

REASONS = {
    "out_of_stock": "Some items ran out before we could set them aside for you.",
    "payment_declined": "Your card issuer declined the payment.",
    "payment_failed": "We could not reach the payment provider, so we did not go ahead.",
    "shipping_failed": "The carrier could not accept the delivery address.",
    "customer_request": "You cancelled this order.",
    "staff_request": "Our staff cancelled this order.",
    "expired": "We could not start processing the order in time.",
}
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


def _money(amount: Decimal | None) -> str:
    return f"${amount}"
