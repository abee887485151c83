"""``Order.objects.lock``: every step and every status change reads its order under this lock."""

import threading
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, connections, transaction
from django.db.transaction import TransactionManagementError
from django.forms.models import model_to_dict

from orders.models import Order
from tests.factories import address

pytestmark = pytest.mark.django_db(transaction=True)


def placed(customer: User) -> Order:
    """An order with no saga under way: a worker running beside the tests (CI's PostgreSQL pass)
    must not lock it meanwhile, as it would an order placed through ``order_place``."""
    return Order.objects.create(
        user=customer, total=Decimal("25.00"), shipping_address=address(), payment_token="tok_visa"
    )


def test_the_locked_order_reads_as_the_orm_reads_it(customer):
    order = placed(customer)
    with transaction.atomic():
        locked = Order.objects.lock(str(order.pk))  # the id as a message carries it
        same = Order.objects.lock(order.pk)
    expected = Order.objects.get(pk=order.pk)
    for read in (locked, same):
        assert model_to_dict(read) == model_to_dict(expected)
        assert (read.pk, read.created_at, read.updated_at) == (expected.pk, expected.created_at, expected.updated_at)
    assert str(locked.total) == "25.00" and locked.shipping_address == address()


def test_an_unknown_order_is_not_found(customer):
    with transaction.atomic(), pytest.raises(Order.DoesNotExist):
        Order.objects.lock(uuid.uuid4())


def test_outside_a_transaction_the_lock_is_refused(customer):
    """It would end with its own statement: the caller would hold nothing."""
    order = placed(customer)
    with pytest.raises(TransactionManagementError):
        Order.objects.lock(order.pk)


def test_the_row_stays_locked_until_the_transaction_ends(customer):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks: a writing transaction holds the whole database")
    order = placed(customer)
    outcomes: list[str] = []

    def another_transaction() -> None:
        try:
            with transaction.atomic():
                Order.objects.select_for_update(nowait=True).get(pk=order.pk)
            outcomes.append("locked it")
        except DatabaseError:
            outcomes.append("found it locked")
        finally:
            connections.close_all()

    with transaction.atomic():
        Order.objects.lock(order.pk)
        meanwhile = threading.Thread(target=another_transaction)
        meanwhile.start()
        meanwhile.join()
    afterwards = threading.Thread(target=another_transaction)
    afterwards.start()
    afterwards.join()
    assert outcomes == ["found it locked", "locked it"]
