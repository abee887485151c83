"""The shipping service's part of the order saga, as steps of the runtime.

The orchestrator's commands (``shipping/tasks.py``) and the choreography's subscriptions
(``shipping/handlers.py``) both call these: the rule lives once, the wiring differs.
"""

from typing import Any

from sagas.hops import Hops
from sagas.runtime import run_compensation, run_step
from shipping import services
from shipping.carriers import AddressRejected, CarrierReceipt

CREATE_SHIPMENT = "create_shipment"
CANCEL_SHIPMENT = "cancel_shipment"


def ship(*, order_id: str, context: dict[str, Any], hops: Hops) -> None:
    """Hand the order's parcel to the carrier (``context``: the order as placed)."""
    address = context["shipping_address"]
    run_step(
        saga_id=order_id,
        step_name=CREATE_SHIPMENT,
        hops=hops,
        prepare=lambda: services.shipment_open(order_id=order_id),
        action=lambda: services.shipment_create(order_id=order_id, address=address),
        record=lambda receipt: _shipped(order_id, receipt),
        refusals=(AddressRejected,),
    )


def _shipped(order_id: str, receipt: CarrierReceipt) -> dict[str, Any]:
    services.shipment_created(order_id=order_id, receipt=receipt)
    return {"carrier": receipt.carrier, "tracking_number": receipt.tracking_number}


def cancel(*, order_id: str, hops: Hops) -> None:
    run_compensation(
        saga_id=order_id, name=CANCEL_SHIPMENT, hops=hops, undo=lambda: services.shipment_cancel(order_id=order_id)
    )
