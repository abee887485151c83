"""The review queue in the admin: oldest first, how long each waited, decisions confirmed and audited."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.utils import timezone

from orders.models import Order, OrderEvent, Status
from outbox.models import OutboxMessage
from risk.models import Screening
from sagas.models import SagaStep
from tests.factories import ProductFactory, StaffMemberFactory, UserFactory, place

URL = "/admin/risk/screening/"


def held_order(hours_ago: float = 0) -> Order:
    """An order the screening held for review, as the step leaves it (no worker needed)."""
    order = place(UserFactory.create(), ProductFactory.create(), postal_code="77777")
    SagaStep.objects.filter(saga_id=order.pk).exclude(name="screen_order").filter(name__startswith="reserve").update(
        status=SagaStep.Status.SUCCEEDED
    )
    SagaStep.objects.filter(saga_id=order.pk, name="screen_order").update(status=SagaStep.Status.HELD)
    Order.objects.filter(pk=order.pk).update(status=Status.IN_REVIEW)
    screening = Screening.objects.create(order_id=order.pk, outcome=Screening.Outcome.REVIEW, reasons="mismatch")
    Screening.objects.filter(pk=screening.pk).update(screened_at=timezone.now() - timedelta(hours=hours_ago))
    return order


def signed_in(*permissions: str) -> Client:
    client = Client()
    client.force_login(
        StaffMemberFactory.create(permissions=["orders.view_order", "risk.view_screening", *permissions])
    )
    return client


@pytest.mark.django_db
def test_the_queue_lists_the_oldest_first_with_how_long_each_waited():
    newer, older = held_order(hours_ago=1), held_order(hours_ago=5)
    html = signed_in().get(URL + "?review=waiting").content.decode()
    assert html.index(str(older.pk)[:8]) < html.index(str(newer.pk)[:8])
    assert "5\xa0hours" in html and "1\xa0hour" in html


@pytest.mark.django_db
def test_approving_is_confirmed_then_recorded_under_the_reviewers_name_and_resumes_the_saga():
    order = held_order()
    screening = Screening.objects.get(order_id=order.pk)
    client = signed_in("risk.review_order")
    choose = {"action": "approve_orders", ACTION_CHECKBOX_NAME: [screening.pk]}

    # the first post asks for confirmation and changes nothing
    page = client.post(URL, choose)
    assert page.status_code == 200 and "are you sure" in page.content.decode()
    assert Screening.objects.get(pk=screening.pk).decision == ""

    # confirmed, the decision is written once, in the journal under the reviewer's name
    sent_before = OutboxMessage.objects.filter(shard=str(order.pk)).count()
    assert client.post(URL, choose | {"confirmed": "yes"}).status_code == 302
    screening.refresh_from_db()
    assert (screening.decision, screening.decided_by.startswith("clerk")) == ("approved", True)
    line = OrderEvent.objects.get(order=order, service="risk", kind=OrderEvent.Kind.ACTION)
    assert line.actor == screening.decided_by and line.actor_kind == "staff"
    assert OutboxMessage.objects.filter(shard=str(order.pk)).count() > sent_before  # the saga resumes

    # and deciding again does not apply
    again = client.post(URL, {"action": "reject_orders", ACTION_CHECKBOX_NAME: [screening.pk]}).content.decode()
    assert "decided already" in again
    assert Screening.objects.get(pk=screening.pk).decision == "approved"


@pytest.mark.django_db
def test_without_the_permission_there_is_no_decision_to_make():
    held_order()
    response = signed_in().get(URL)
    assert response.status_code == 200
    assert "approve_orders" not in response.content.decode()
