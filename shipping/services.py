"""Shipment writes. The carrier is the truth about shipments; ``Shipment`` is our copy."""

from typing import Any

from django.utils import timezone

from shipping.carriers import AddressRejected, CarrierReceipt, get_carrier
from shipping.models import Shipment


def shipment_key(order_id: Any) -> str:
    return f"order:{order_id}:shipment"


def shipment_open(*, order_id: Any) -> None:
    """The order's ``pending`` shipment, before any call to the carrier (no row, no call),
    unless an earlier attempt wrote it. Call it in the transaction that claims the attempt.
    As ``payment_open``: one INSERT … ON CONFLICT DO NOTHING."""
    Shipment.objects.bulk_create([Shipment(order_id=order_id, carrier=get_carrier().name)], ignore_conflicts=True)


def shipment_create(*, order_id: Any, address: dict[str, Any]) -> CarrierReceipt:
    """Hand the order's parcel (``shipment_open`` wrote its row) to the carrier for ``address``,
    once (idempotency key ``order:<id>:shipment``: a repeated key is answered with the first
    parcel); the carrier's receipt, which ``shipment_created`` writes down.

    Raises ``AddressRejected`` (final), ``KeyInUse`` (an earlier attempt is still in flight) or
    another ``CarrierError`` (worth retrying).
    Compensation: ``shipment_cancel``.
    """
    try:
        return get_carrier().create_shipment(address=address, idempotency_key=shipment_key(order_id))
    except AddressRejected:
        Shipment.objects.filter(order_id=order_id).update(status=Shipment.Status.REJECTED, updated_at=timezone.now())
        raise


def shipment_created(*, order_id: Any, receipt: CarrierReceipt) -> None:
    """Write down the carrier's ``receipt`` on the order's shipment, in the transaction that
    records the step; as ``payment_charged``, only a ``pending`` shipment takes it."""
    Shipment.objects.filter(order_id=order_id, status=Shipment.Status.PENDING).update(
        status=Shipment.Status.CREATED,
        carrier=receipt.carrier,
        tracking_number=receipt.tracking_number,
        updated_at=timezone.now(),
    )


def shipment_cancel(*, order_id: Any) -> bool:
    """Cancel the order's shipment at the carrier, if the carrier has one. Idempotent.

    Asks the carrier, not our record, so a shipment created after its step was given up (or
    one the reconciler found) is cancelled too. Returns whether there was a shipment (now
    cancelled). Raises ``KeyInUse`` while a create attempt is still in flight: the cancel must
    wait for it.
    """
    carrier = get_carrier()
    receipt = carrier.find_shipment(idempotency_key=shipment_key(order_id))
    if receipt is None:
        return False  # the carrier never accepted it: nothing to cancel
    if receipt.live:
        carrier.cancel_shipment(tracking_number=receipt.tracking_number)
    Shipment.objects.filter(order_id=order_id).update(
        status=Shipment.Status.CANCELLED, tracking_number=receipt.tracking_number, updated_at=timezone.now()
    )
    return True
