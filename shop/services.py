"""Catalog and stock writes."""

from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from shop.models import Product, StockReservation

if TYPE_CHECKING:
    from orders.models import OrderLine


class OutOfStock(Exception):
    def __init__(self, sku: str) -> None:
        super().__init__(f"Not enough stock for {sku}.")
        self.sku = sku


def product_create(*, sku: str, name: str, price: Decimal, stock: int = 0, description: str = "") -> Product:
    product = Product(sku=sku, name=name, price=price, stock=stock, description=description)
    product.full_clean()
    product.save()
    return product


def stock_reserve(*, line: "OrderLine") -> StockReservation:
    """Take the line's quantity from its product's stock.

    One conditional UPDATE (``stock >= quantity``) decides, so concurrent buyers can never
    oversell, and the reservation row is unique per line, so a repeated call returns the
    first reservation and takes nothing more. Raises ``OutOfStock`` and changes nothing when
    the units are not there. Compensation: ``stock_release``.
    """
    try:
        with transaction.atomic():
            taken = Product.objects.filter(pk=line.product_id, stock__gte=line.quantity).update(
                stock=F("stock") - line.quantity
            )
            if taken:
                return StockReservation.objects.create(line=line, product_id=line.product_id, quantity=line.quantity)
    except IntegrityError:  # reserved already: the rollback gave those units back
        pass
    reservation = StockReservation.objects.filter(line=line).first()
    if reservation is None:
        raise OutOfStock(line.sku)
    return reservation


def stock_release(*, order_id: UUID) -> int:
    """Give back every unit still reserved for the order; return how many units came back.

    Each reservation flips to ``released`` in the same transaction that returns its units, and
    only if it was still ``reserved``: running this twice, or concurrently, returns them once.
    """
    returned = 0
    for reservation in StockReservation.objects.filter(
        line__order_id=order_id, status=StockReservation.Status.RESERVED
    ):
        with transaction.atomic():
            flipped = StockReservation.objects.filter(
                pk=reservation.pk, status=StockReservation.Status.RESERVED
            ).update(status=StockReservation.Status.RELEASED, released_at=timezone.now())
            if flipped:
                Product.objects.filter(pk=reservation.product_id).update(stock=F("stock") + reservation.quantity)
                returned += reservation.quantity
    return returned
