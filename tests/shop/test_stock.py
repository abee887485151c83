"""Stock reservations: never oversold, never negative, released exactly once."""

import pytest
from django.db import IntegrityError, transaction

from orders.models import OrderLine
from orders.services import OrderItem, order_place
from shop.models import Product, StockReservation
from shop.services import OutOfStock, stock_release, stock_reserve
from tests.factories import ProductFactory


def line_of(customer, product, quantity: int) -> OrderLine:
    order = order_place(
        user=customer, items=[OrderItem(product.sku, quantity)], shipping_address={}, payment_token="tok_visa"
    )
    return order.lines.get()


def test_reserving_takes_the_units_once_however_often_it_runs(customer):
    product = ProductFactory(stock=5)
    line = line_of(customer, product, 3)
    stock_reserve(line=line)
    stock_reserve(line=line)
    product.refresh_from_db()
    assert product.stock == 2
    assert StockReservation.objects.get(line=line).status == "reserved"


def test_a_reservation_that_does_not_fit_changes_nothing(customer):
    product = ProductFactory(stock=2)
    line = line_of(customer, product, 3)
    with pytest.raises(OutOfStock):
        stock_reserve(line=line)
    product.refresh_from_db()
    assert product.stock == 2
    assert not StockReservation.objects.exists()


def test_release_gives_units_back_exactly_once(customer):
    product = ProductFactory(stock=5)
    line = line_of(customer, product, 4)
    stock_reserve(line=line)
    assert stock_release(order_id=line.order_id) == 4
    assert stock_release(order_id=line.order_id) == 0
    product.refresh_from_db()
    assert product.stock == 5
    assert StockReservation.objects.get(line=line).status == "released"


def test_the_database_refuses_negative_stock(db):
    product = ProductFactory(stock=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=product.pk).update(stock=-1)
