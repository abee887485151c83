"""The screening's record: the provider's verdict written once per order, in one statement."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from risk.models import Screening
from risk.services import OrderRejected, _first_verdict, screening_run

ADDRESS = {"name": "A Buyer", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


@pytest.mark.django_db(transaction=True)  # in autocommit, as a step's call runs
def test_a_first_screening_is_one_read_and_one_insert_in_no_transaction_of_its_own():
    order_id = str(uuid.uuid4())
    with CaptureQueriesContext(connection) as ctx:
        screening_run(order_id=order_id, total="12.50", address=ADDRESS)
    verbs = [query["sql"].split(maxsplit=1)[0].upper() for query in ctx.captured_queries]
    assert verbs == ["SELECT", "INSERT"]
    assert Screening.objects.get(order_id=order_id).outcome == Screening.Outcome.APPROVED


@pytest.mark.django_db(transaction=True)
def test_a_copy_of_the_run_that_writes_second_takes_the_first_verdict():
    # given a screening written by the first run: rejected
    order_id = uuid.uuid4()
    Screening.objects.create(order_id=order_id, outcome=Screening.Outcome.REJECTED, reasons="block list")

    # when a copy that asked the provider too (and heard otherwise) writes its verdict second
    stands = _first_verdict(Screening(order_id=order_id, outcome=Screening.Outcome.APPROVED))

    # then the first verdict stands, for the copy and for every later run
    assert (stands.outcome, Screening.objects.filter(order_id=order_id).count()) == (Screening.Outcome.REJECTED, 1)
    with pytest.raises(OrderRejected):
        screening_run(order_id=str(order_id), total="12.50", address=ADDRESS)


@pytest.mark.django_db
def test_inside_a_transaction_a_copy_that_writes_second_leaves_the_transaction_usable():
    order_id = uuid.uuid4()
    Screening.objects.create(order_id=order_id, outcome=Screening.Outcome.REVIEW)
    assert _first_verdict(Screening(order_id=order_id, outcome=Screening.Outcome.APPROVED)).outcome == "review"
    assert Screening.objects.filter(order_id=order_id).count() == 1  # the transaction still answers
