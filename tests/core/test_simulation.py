"""``may_conflict``: the simulators' inserts that may meet a unique key (a repeated idempotency key)."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from core.models import SimulatorCall
from core.simulation import may_conflict


def verbs(captured: list[dict[str, str]]) -> list[str]:
    return [query["sql"].split()[0].upper() for query in captured]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_insert_is_one_statement_and_a_conflict_changes_nothing():
    """A remote step calls its provider outside any transaction: no BEGIN, no COMMIT."""
    with CaptureQueriesContext(connection) as ctx, may_conflict():
        SimulatorCall.objects.create(service="payments.charge", key="k", attempts=1)
    assert verbs(ctx.captured_queries) == ["INSERT"]

    with pytest.raises(IntegrityError), may_conflict():
        SimulatorCall.objects.create(service="payments.charge", key="k", attempts=5)
    assert SimulatorCall.objects.get().attempts == 1


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_a_conflict_leaves_the_transaction_usable():
    with transaction.atomic():
        SimulatorCall.objects.create(service="payments.charge", key="k", attempts=1)
        with pytest.raises(IntegrityError), may_conflict():
            SimulatorCall.objects.create(service="payments.charge", key="k", attempts=5)
        # Without the savepoint, PostgreSQL refuses this: the transaction is aborted.
        SimulatorCall.objects.create(service="payments.charge", key="k2", attempts=1)
    assert sorted(SimulatorCall.objects.values_list("key", "attempts")) == [("k", 1), ("k2", 1)]
