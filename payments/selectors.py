from typing import Any

from payments.models import Payment
from payments.providers import LedgerEntry, get_payment_provider


def provider_transactions(*, order_id: str) -> list[LedgerEntry]:
    """The provider's own record of money moved for the order."""
    return get_payment_provider().transactions(order_ref=order_id)


def payment_of(order_id: Any) -> Payment | None:
    """Our record of the order's payment; ``None`` until the payment service acts."""
    return Payment.objects.filter(order_id=order_id).first()


def payments_of(order_ids: list[Any]) -> dict[Any, Payment]:
    """The payments of many orders at once, by order id."""
    return {payment.order_id: payment for payment in Payment.objects.filter(order_id__in=order_ids)}
