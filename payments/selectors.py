from dataclasses import dataclass
from decimal import Decimal
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


@dataclass(frozen=True)
class MoneyHeld:
    """What the provider holds for an order: its succeeded charges and the sum refunded."""

    charges: tuple[Decimal, ...]
    refunded: Decimal

    @property
    def net(self) -> Decimal:
        return sum(self.charges, Decimal("0")) - self.refunded


def money_held(*, order_id: Any) -> MoneyHeld:
    """The provider's ledger for the order, summed: what the reconciler compares with the order."""
    ledger = [e for e in get_payment_provider().transactions(order_ref=str(order_id)) if e.status == "succeeded"]
    return MoneyHeld(
        charges=tuple(e.amount for e in ledger if e.kind == "charge"),
        refunded=sum((e.amount for e in ledger if e.kind == "refund"), Decimal("0")),
    )
