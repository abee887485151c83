"""Catalog and stock writes."""

from decimal import Decimal
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.bounds import integer_column_max
from shop.models import Product, StockReservation


class OutOfStock(Exception):
    def __init__(self, sku: str) -> None:
        super().__init__(f"Not enough stock for {sku}.")
        self.sku = sku


def product_create(
    *, sku: str, name: str, price: Decimal, stock: int = 0, description: str = "", currency: str = "USD"
) -> Product:
    product = Product(sku=sku, name=name, price=price, stock=stock, description=description, currency=currency)
    product.full_clean()
    product.save()
    return product


def product_update(*, product: Product, changes: dict[str, Any], stock_seen: int | None = None) -> Product:
    """Save staff's edit of ``product``: the fields in ``changes``, and nothing else.

    Stock moves only by deltas: reservations and releases change it concurrently, so writing
    back a number read earlier would undo them. A new ``stock`` in ``changes`` is applied as
    the difference from ``stock_seen`` (what the editor saw; the value just read by default)
    to the current count, and refused (``ValidationError``) if that would go below zero or
    above what the column holds.
    """
    new_stock = changes.pop("stock", None)
    fields = list(changes)
    for name, value in changes.items():
        setattr(product, name, value)
    product.full_clean(exclude=["stock"])
    with transaction.atomic():
        if fields:
            product.save(update_fields=[*fields, "updated_at"])
        if new_stock is not None:
            delta = int(new_stock) - (product.stock if stock_seen is None else stock_seen)
            most = integer_column_max(Product, "stock")  # more fails at the database
            fits = Q(stock__lte=most - delta) if delta > 0 else Q(stock__gte=-delta)
            if delta and not Product.objects.filter(fits, pk=product.pk).update(
                stock=F("stock") + delta, updated_at=timezone.now()
            ):
                problem = (
                    ValidationError(f"Stock can be at most {most:,}; this change would make it more.", code="max_value")
                    if delta > 0
                    else ValidationError(
                        "Units were reserved meanwhile; this change would make stock negative.",
                        code="insufficient_stock",
                    )
                )
                raise ValidationError({"stock": problem})
    product.refresh_from_db(fields=["stock", "updated_at"])
    return product


def stock_reserve(*, order_id: UUID | str, line_id: int, sku: str, quantity: int) -> StockReservation:
    """Take ``quantity`` units of ``sku`` from stock for the line ``line_id`` of an order.

    One conditional UPDATE (``stock >= quantity``) decides, so concurrent buyers can never
    oversell, and the reservation row is unique per line, so a repeated call returns the
    first reservation and takes nothing more (it gives back what it took). Raises
    ``OutOfStock`` and changes nothing when the units are not there. Inside the caller's
    transaction (a saga step's) it opens no savepoint: nothing in it fails on purpose.
    Compensation: ``stock_release``.
    """
    with transaction.atomic(savepoint=False):  # a transaction of its own only when called outside one
        product_id = _take(sku=sku, quantity=quantity)
        if product_id is not None:
            reservation = _hold(order_id=order_id, line_id=line_id, product_id=product_id, quantity=quantity)
            if reservation is not None:
                return reservation
            # reserved already: the units just taken go back, in this transaction still
            Product.objects.filter(pk=product_id).update(stock=F("stock") + quantity)
    reservation = StockReservation.objects.filter(line_id=line_id).first()
    if reservation is None:
        raise OutOfStock(sku)
    return reservation


def _take(*, sku: str, quantity: int) -> int | None:
    """The conditional UPDATE, answering which product it took from (``RETURNING``, which the
    ORM's ``update()`` lacks: one statement instead of an UPDATE and a SELECT); ``None`` when
    the units are not there."""
    table = connection.ops.quote_name(Product._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET stock = stock - %s WHERE sku = %s AND stock >= %s RETURNING id",
            [quantity, sku, quantity],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


# What a new reservation writes (``released_at`` starts empty, the id comes back).
HELD_FIELDS = frozenset({"order_id", "line_id", "product", "quantity", "status", "created_at"})


def _hold(*, order_id: UUID | str, line_id: int, product_id: int, quantity: int) -> StockReservation | None:
    """The line's reservation row, or ``None`` when the line has one already.

    ``INSERT … ON CONFLICT DO NOTHING RETURNING``: a duplicate is an answer, not an error, so
    no savepoint has to catch it. The ORM's ``bulk_create(ignore_conflicts=True)`` writes the
    same statement but does not tell whether the row went in.
    """
    reservation = StockReservation(
        order_id=order_id, line_id=line_id, product_id=product_id, quantity=quantity, created_at=timezone.now()
    )
    fields = [field for field in StockReservation._meta.concrete_fields if field.name in HELD_FIELDS]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    values = [field.get_db_prep_save(getattr(reservation, field.attname), connection) for field in fields]
    table = connection.ops.quote_name(StockReservation._meta.db_table)
    line = connection.ops.quote_name("line_id")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
            f" ON CONFLICT ({line}) DO NOTHING RETURNING id",
            values,
        )
        row = cursor.fetchone()
    if row is None:
        return None
    reservation.pk = int(row[0])
    reservation._state.adding = False
    return reservation


def stock_release(*, order_id: UUID | str) -> bool:
    """Give back every unit still reserved for the order; return whether it had reservations.

    Each reservation flips to ``released`` in the same transaction that returns its units, and
    only if it was still ``reserved``: running this twice, or concurrently, returns them once.
    """
    for reservation in StockReservation.objects.filter(order_id=order_id, status=StockReservation.Status.RESERVED):
        with transaction.atomic():
            flipped = StockReservation.objects.filter(
                pk=reservation.pk, status=StockReservation.Status.RESERVED
            ).update(status=StockReservation.Status.RELEASED, released_at=timezone.now())
            if flipped:
                Product.objects.filter(pk=reservation.product_id).update(stock=F("stock") + reservation.quantity)
    return StockReservation.objects.filter(order_id=order_id).exists()
