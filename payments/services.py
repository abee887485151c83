"""Payment writes. The provider is the truth about money; ``Payment`` is our copy of it."""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from payments.models import Payment
from payments.providers import Charge, PaymentDeclined, ProviderRejected, RefundFailed, get_payment_provider

PARKED = "the payment provider refused the shop's charge request (see charge_payment): parked for staff"


def charge_key(order_id: Any) -> str:
    return f"order:{order_id}:charge"


def refund_key(order_id: Any, charge_reference: str) -> str:
    return f"order:{order_id}:refund:{charge_reference}"


def payment_open(*, order_id: Any, amount: Decimal, currency: str | None = None) -> None:
    """The order's ``pending`` payment, before any call to the provider (no row, no call),
    unless an earlier attempt wrote it. Call it in the transaction that claims the attempt.

    One INSERT … ON CONFLICT DO NOTHING, where ``get_or_create`` would read, then insert.
    """
    payment = Payment(order_id=order_id, amount=amount, currency=currency or settings.SHOP_CURRENCY)
    Payment.objects.bulk_create([payment], ignore_conflicts=True)


def payment_charge(*, order_id: Any, token: str, amount: Decimal, currency: str | None = None) -> Charge:
    """Charge ``amount`` for the order (``payment_open`` wrote its row) with its payment
    ``token``, once; the provider's charge, which ``payment_charged`` writes down.

    Side effects: at most one successful charge at the provider, whatever the retries, since
    every attempt carries the idempotency key ``order:<id>:charge`` (an earlier attempt's reply
    may have been lost, or its success not written: the provider answers a repeated key with
    the first charge). Nothing is read first: the amount is the order's, and only the provider
    knows whether an earlier attempt charged. Raises ``PaymentDeclined`` (final), ``KeyInUse``
    (an earlier attempt is still in flight: unknown yet) or another ``PaymentError`` (worth
    retrying). Compensation: ``payment_refund``.
    """
    try:
        return get_payment_provider().charge(
            amount=amount,
            currency=currency or settings.SHOP_CURRENCY,
            token=token,
            idempotency_key=charge_key(order_id),
            order_ref=str(order_id),
        )
    except PaymentDeclined:
        _mark(order_id, Payment.Status.DECLINED)
        raise
    except ProviderRejected:
        _mark(order_id, Payment.Status.REJECTED)
        raise


def payment_charged(*, order_id: Any, charge: Charge) -> None:
    """Write down the provider's ``charge`` on the order's payment: one UPDATE, in the
    transaction that records the charge's step. Only a ``pending`` payment takes it: one that
    the compensation settled meanwhile (refunded, failed) says what the provider holds now,
    and the compensation is the one to take this charge back (``_landed_late``)."""
    Payment.objects.filter(order_id=order_id, status=Payment.Status.PENDING).update(
        status=Payment.Status.SUCCEEDED, provider_reference=charge.reference, updated_at=timezone.now()
    )


def payment_refund(*, order_id: Any) -> bool:
    """Give back every charge the provider holds for the order, each once (idempotency key
    ``order:<id>:refund:<charge>``).

    First cancels, at the provider, a charge begun but never finished (a Stripe intent created
    and not confirmed, or declined), so that no attempt outliving its lease can confirm it
    after this looked. Then asks the provider, not our record, what was charged: a charge whose reply was lost, one
    that landed after its step was given up, or one the reconciler found, is refunded too.
    Returns whether anything was charged (now all refunded); ``False`` when nothing was.
    Raises ``KeyInUse`` while a charge attempt is still in flight (the refund must wait for
    it), ``RefundFailed`` (worth retrying), and ``ProviderRejected`` (final: the order waits
    for staff) when the provider refused the shop's own request, here or at the charge: once
    for a refused charge, after making sure it moved no money (staff's retry then settles it).
    """
    payment = Payment.objects.filter(order_id=order_id).first()
    rejected = payment is not None and payment.status == Payment.Status.REJECTED
    if payment is not None and rejected:
        # Parked once (below, or by the provider refusing these calls too): staff's retry, once
        # the cause is fixed, goes the ordinary way.
        _set_status(payment, Payment.Status.FAILED)
    provider = get_payment_provider()
    # raises while a charge is in flight
    provider.find_charge(idempotency_key=charge_key(order_id), order_ref=str(order_id))
    provider.cancel_unconfirmed(order_ref=str(order_id), idempotency_key=charge_key(order_id))
    ledger = provider.transactions(order_ref=str(order_id))
    charges = [e for e in ledger if e.kind == "charge" and e.status == "succeeded"]
    if not charges:
        if payment is not None and payment.status == Payment.Status.PENDING:
            _set_status(payment, Payment.Status.FAILED)
        if rejected:
            raise ProviderRejected(PARKED)
        return False
    refunded = {e.charge_reference for e in ledger if e.kind == "refund" and e.status == "succeeded"}
    try:
        for charge in charges:
            if charge.reference not in refunded:
                provider.refund(
                    charge_reference=charge.reference,
                    amount=charge.amount,
                    idempotency_key=refund_key(order_id, charge.reference),
                )
    except RefundFailed:
        if payment is not None:
            _set_status(payment, Payment.Status.REFUND_FAILED)
        raise
    if payment is None:
        return True  # charged under the order's name without our asking (the reconciler found it)
    payment.status = Payment.Status.REFUNDED
    payment.refunded_amount = sum((charge.amount for charge in charges), Decimal("0"))
    payment.provider_reference = charges[0].reference
    payment.save(update_fields=["status", "refunded_amount", "provider_reference", "updated_at"])
    if rejected:
        raise ProviderRejected(PARKED)
    return True


def _mark(order_id: Any, status: Payment.Status) -> None:
    Payment.objects.filter(order_id=order_id).update(status=status, updated_at=timezone.now())


def _set_status(payment: Payment, status: Payment.Status) -> None:
    payment.status = status
    payment.save(update_fields=["status", "updated_at"])
