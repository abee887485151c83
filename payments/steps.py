"""The payment service's part of the order saga, as steps of the runtime.

The orchestrator's commands (``payments/tasks.py``) and the choreography's subscriptions
(``payments/handlers.py``) both call these: the rule lives once, the wiring differs.
"""

from decimal import Decimal
from typing import Any

from payments import services
from payments.providers import Charge, PaymentDeclined, ProviderRejected
from sagas.hops import Hops
from sagas.runtime import run_compensation, run_step

CHARGE_PAYMENT = "charge_payment"
REFUND_PAYMENT = "refund_payment"


def charge(*, order_id: str, context: dict[str, Any], hops: Hops) -> None:
    """Charge the order's total (``context``: the order as placed)."""
    amount, currency = Decimal(context["total"]), context["currency"]
    run_step(
        saga_id=order_id,
        step_name=CHARGE_PAYMENT,
        hops=hops,
        prepare=lambda: services.payment_open(order_id=order_id, amount=amount, currency=currency),
        action=lambda: services.payment_charge(
            order_id=order_id, token=context["payment_token"], amount=amount, currency=currency
        ),
        record=lambda charge: _charged(order_id, charge),
        refusals=(PaymentDeclined, ProviderRejected),
    )


def _charged(order_id: str, charge: Charge) -> dict[str, Any]:
    services.payment_charged(order_id=order_id, charge=charge)
    return {"amount": str(charge.amount)}


def refund(*, order_id: str, hops: Hops) -> None:
    run_compensation(
        saga_id=order_id,
        name=REFUND_PAYMENT,
        hops=hops,
        undo=lambda: services.payment_refund(order_id=order_id),
        final=(ProviderRejected,),
    )
