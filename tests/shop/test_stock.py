"""Stock reservations: never oversold, never negative, released exactly once."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from orders.models import OrderLine
from orders.services import OrderItem, order_place
from shop.models import Product, StockReservation
from shop.services import OutOfStock, product_create, product_update, stock_release, stock_reserve
from tests.factories import ProductFactory


def reserve(line: OrderLine) -> StockReservation:
    return stock_reserve(order_id=line.order_id, line_id=line.pk, sku=line.sku, quantity=line.quantity)


def line_of(customer, product, quantity: int) -> OrderLine:
    order = order_place(
        user=customer, items=[OrderItem(product.sku, quantity)], shipping_address={}, payment_token="tok_visa"
    )
    return order.lines.get()


def test_reserving_takes_the_units_once_however_often_it_runs(customer):
    product = ProductFactory(stock=5)
    line = line_of(customer, product, 3)
    reserve(line)
    reserve(line)
    product.refresh_from_db()
    assert product.stock == 2
    assert StockReservation.objects.get(line_id=line.pk).status == "reserved"


def test_a_repeated_reservation_answers_with_the_first_even_when_no_units_are_left(customer):
    product = ProductFactory(stock=3)
    line = line_of(customer, product, 3)
    first = reserve(line)
    assert (first.pk, first.status, first.quantity, first.product_id) == (
        StockReservation.objects.get().pk,
        "reserved",
        3,
        product.pk,
    )
    assert first.created_at is not None
    assert reserve(line).pk == first.pk  # none left to take: the line's reservation answers
    product.refresh_from_db()
    assert product.stock == 0


def test_a_reservation_inside_a_transaction_opens_no_savepoint_and_a_repeat_leaves_it_usable(customer):
    product = ProductFactory(stock=5)
    line = line_of(customer, product, 2)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        first = reserve(line)
        again = reserve(line)  # takes 2 units, finds the line reserved, gives them back
        product.refresh_from_db()  # the transaction goes on: no error left pending in it
    assert again.pk == first.pk
    assert product.stock == 3
    assert not [q["sql"] for q in queries if "SAVEPOINT" in q["sql"].upper()]


def test_a_reservation_that_does_not_fit_changes_nothing(customer):
    product = ProductFactory(stock=2)
    line = line_of(customer, product, 3)
    with pytest.raises(OutOfStock):
        reserve(line)
    product.refresh_from_db()
    assert product.stock == 2
    assert not StockReservation.objects.exists()


def test_release_gives_units_back_exactly_once(customer):
    product = ProductFactory(stock=5)
    line = line_of(customer, product, 4)
    reserve(line)
    product.refresh_from_db()
    assert product.stock == 1
    assert stock_release(order_id=line.order_id) is True
    assert stock_release(order_id=line.order_id) is True  # it had a reservation: nothing more comes back
    product.refresh_from_db()
    assert product.stock == 5
    assert StockReservation.objects.get(line_id=line.pk).status == "released"


def test_the_database_refuses_negative_stock(db):
    product = ProductFactory(stock=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=product.pk).update(stock=-1)


def test_releasing_an_order_that_reserved_nothing_says_so(customer):
    product = ProductFactory(stock=5)
    line = line_of(customer, product, 4)

    assert stock_release(order_id=line.order_id) is False
    assert Product.objects.get(pk=product.pk).stock == 5


def test_a_staff_edit_that_does_not_name_stock_never_writes_it(customer):
    # given a product whose page staff opened, then a reservation while it was open
    product = ProductFactory(stock=60, price="10.00")
    seen = Product.objects.get(pk=product.pk)
    reserve(line_of(customer, product, 10))

    # when staff save a new price from what they saw
    product_update(product=seen, changes={"price": "12.00"})

    # then the price changed and the reserved units stay taken
    product.refresh_from_db()
    assert (product.price, product.stock) == (Decimal("12.00"), 50)


def test_a_staff_stock_change_is_applied_as_the_difference_they_made(customer):
    # given staff saw 60 units, then 10 were reserved
    product = ProductFactory(stock=60)
    reserve(line_of(customer, product, 10))

    # when they set 70 (adding 10 to what they saw)
    product_update(product=Product.objects.get(pk=product.pk), changes={"stock": 70}, stock_seen=60)

    # then 10 units arrive on top of what is left: the reservation is not undone
    assert Product.objects.get(pk=product.pk).stock == 60


def test_a_stock_change_that_would_go_negative_is_refused(customer):
    product = ProductFactory(stock=10)
    reserve(line_of(customer, product, 8))

    with pytest.raises(ValidationError):
        product_update(product=Product.objects.get(pk=product.pk), changes={"stock": 0}, stock_seen=10)

    assert Product.objects.get(pk=product.pk).stock == 2


def test_a_product_in_another_currency_is_refused(db):
    with pytest.raises(ValidationError):
        product_create(sku="EUR-1", name="Euro mug", price=Decimal("5.00"), currency="EUR")
