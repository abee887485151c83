from payments.providers import LedgerEntry, get_payment_provider


def provider_transactions(*, order_id: str) -> list[LedgerEntry]:
    """The provider's own record of money moved for the order."""
    return get_payment_provider().transactions(order_ref=order_id)
