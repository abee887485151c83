"""Payment writes. The provider is the truth about money; ``Payment`` is our copy of it."""

from django.db import transaction

from orders.models import Order
from payments.models import Payment
from payments.providers import PaymentDeclined, RefundFailed, get_payment_provider


def charge_key(order: Order) -> str:
    return f"order:{order.pk}:charge"


def refund_key(order: Order) -> str:
    return f"order:{order.pk}:refund"


def payment_charge(*, order: Order) -> Payment:
    """Charge the order's total with its payment token, once.

    Side effects: at most one successful charge at the provider, whatever the retries, since
    every attempt carries the idempotency key ``order:<id>:charge`` and first asks the
    provider for a charge made under it (an earlier attempt's reply may have been lost).
    Raises ``PaymentDeclined`` (final) or another ``PaymentError`` (worth retrying).
    Compensation: ``payment_refund``.
    """
    payment, first_attempt = Payment.objects.get_or_create(
        order=order, defaults={"amount": order.total, "currency": order.currency}
    )
    if payment.status == Payment.Status.SUCCEEDED:
        return payment
    provider = get_payment_provider()
    key = charge_key(order)
    # Only an earlier attempt (its Payment row exists) can have charged with its reply lost.
    charge = None if first_attempt else provider.find_charge(idempotency_key=key)
    if charge is None:
        try:
            charge = provider.charge(
                amount=order.total,
                currency=order.currency,
                token=order.payment_token,
                idempotency_key=key,
                order_ref=str(order.pk),
            )
        except PaymentDeclined:
            _set_status(payment, Payment.Status.DECLINED)
            raise
    payment.status = Payment.Status.SUCCEEDED
    payment.provider_reference = charge.reference
    payment.save(update_fields=["status", "provider_reference", "updated_at"])
    return payment


def payment_refund(*, order: Order) -> Payment | None:
    """Give back all that was charged for the order, once (idempotency key ``order:<id>:refund``).

    Asks the provider, not our record, whether a charge exists, so a charge whose reply was
    lost is refunded too. Raises ``RefundFailed`` (worth retrying). Changes nothing when
    nothing was charged, except marking a payment that never went through as failed.
    """
    payment = Payment.objects.filter(order=order).first()
    if payment is None or payment.status == Payment.Status.REFUNDED:
        return payment
    provider = get_payment_provider()
    charge = provider.find_charge(idempotency_key=charge_key(order))
    if charge is None:
        if payment.status == Payment.Status.PENDING:
            _set_status(payment, Payment.Status.FAILED)
        return payment
    try:
        provider.refund(charge_reference=charge.reference, amount=charge.amount, idempotency_key=refund_key(order))
    except RefundFailed:
        _set_status(payment, Payment.Status.REFUND_FAILED)
        raise
    with transaction.atomic():
        payment.status = Payment.Status.REFUNDED
        payment.refunded_amount = charge.amount
        payment.provider_reference = charge.reference
        payment.save(update_fields=["status", "refunded_amount", "provider_reference", "updated_at"])
    return payment


def _set_status(payment: Payment, status: Payment.Status) -> None:
    payment.status = status
    payment.save(update_fields=["status", "updated_at"])
