"""Rows written together (``core.together``): one INSERT per table at the end of the block, in
the order they were added, inside the transaction."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.together import insert, together
from orders.journal import order_record_action
from orders.models import OrderEvent
from orders.services import OrderItem, order_place
from outbox.models import OutboxMessage
from tests.factories import ProductFactory, address

# Committed for real: no worker of the session may run the orders' sagas meanwhile (their
# journal lines would land among the ones these tests count).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_relay")]


def inserts(queries: CaptureQueriesContext, table: str) -> int:
    return sum(1 for q in queries.captured_queries if q["sql"].startswith(f'INSERT INTO "{table}"'))


@pytest.fixture
def order(customer):
    return order_place(
        user=customer, items=[OrderItem(ProductFactory().sku, 1)], shipping_address=address(), payment_token="tok_visa"
    )


def line(order, name: str) -> OrderEvent:
    return OrderEvent(order=order, actor="system", message=name, to_status=order.status, service="orders", name=name)


def test_a_block_writes_each_tables_rows_in_one_insert_at_its_end_in_order(order):
    before = OrderEvent.objects.filter(order=order).count()
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), together():
        for name in ("first", "second", "third"):
            order_record_action(order=order, actor="system", message=name)
        assert OrderEvent.objects.filter(order=order).count() == before  # held until the block ends
    assert inserts(queries, OrderEvent._meta.db_table) == 1
    written = list(OrderEvent.objects.filter(order=order).order_by("id").values_list("message", flat=True))
    assert written[before:] == ["first", "second", "third"]


def test_outside_a_block_a_row_is_written_at_once(order):
    with transaction.atomic():
        row = line(order, "alone")
        insert(row)
        assert row.pk is not None and OrderEvent.objects.filter(pk=row.pk).exists()


def test_a_block_that_raises_writes_nothing(order):
    before = OrderEvent.objects.filter(order=order).count()

    def a_step_that_fails() -> None:
        with transaction.atomic(), together():
            insert(line(order, "lost"))
            raise RuntimeError("the step failed")

    with pytest.raises(RuntimeError):
        a_step_that_fails()
    assert OrderEvent.objects.filter(order=order).count() == before


def test_a_row_added_inside_a_savepoint_goes_with_it_and_what_waited_stays(order):
    before = OrderEvent.objects.filter(order=order).count()

    def a_savepoint_that_rolls_back() -> None:
        with transaction.atomic():
            insert(line(order, "rolled back with its savepoint"))
            raise RuntimeError

    with transaction.atomic(), together():
        insert(line(order, "kept"))
        with pytest.raises(RuntimeError):
            a_savepoint_that_rolls_back()
        insert(line(order, "after"))
    written = OrderEvent.objects.filter(order=order).order_by("created_at", "id").values_list("message", flat=True)
    assert list(written)[before:] == ["kept", "after"]


def test_placing_an_order_writes_its_journal_lines_and_messages_in_one_insert_each(customer):
    product = ProductFactory()
    with CaptureQueriesContext(connection) as queries:
        order = order_place(
            user=customer, items=[OrderItem(product.sku, 1)], shipping_address=address(), payment_token="tok_visa"
        )
    assert OrderEvent.objects.filter(order=order).count() >= 2
    assert OutboxMessage.objects.filter(shard=str(order.pk)).count() >= 2
    assert inserts(queries, OrderEvent._meta.db_table) == 1
    assert inserts(queries, OutboxMessage._meta.db_table) == 1


def test_together_belongs_inside_a_transaction():
    with pytest.raises(RuntimeError), together():
        pass
