"""The operators' admin on a real worker, in both modes: a parked message or event re-queued by
staff is handled and its order ends; the stuck view lists an order whose worker was killed."""

from typing import Any

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.test import Client
from kombu.exceptions import EncodeError

from events.models import InboxEntry
from notifications.models import Notification
from orders.models import OrderEvent, Status
from outbox import relay
from outbox.models import OutboxMessage
from tests.factories import ProductFactory, StaffMemberFactory, order_body, post_order
from tests.notifications.test_order_emails_saga import free_port, smtp_server  # noqa: F401 (fixture)
from tests.worker import recover_until_terminal, wait_for_step, wait_for_terminal, wait_until, wait_until_settled

pytestmark = pytest.mark.saga


def browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def requeue(client: Client, changelist: str, ids: list[int]) -> Any:
    """What the admin's "Re-queue" action posts."""
    return client.post(changelist, {"action": "requeue", "_selected_action": [str(i) for i in ids]})


def poison(row: OutboxMessage) -> None:
    raise EncodeError("cannot encode the message")


def test_a_parked_message_requeued_from_the_admin_is_published_and_its_order_ends(
    saga, api, customer, monkeypatch, coordination
):
    # given an order whose first messages could not be published (no worker relays meanwhile)
    saga.stop()
    order_id = post_order(api, order_body(ProductFactory(stock=5)))
    monkeypatch.setattr(relay, "_apply", poison)
    for _ in range(2 * settings.OUTBOX_MAX_ATTEMPTS):  # one attempt per sweep; the second waits behind the first
        relay.relay_due()
    monkeypatch.undo()
    parked = list(OutboxMessage.objects.filter(shard=order_id, parked_at__isnull=False).values_list("id", flat=True))
    assert parked and not OutboxMessage.objects.filter(shard=order_id, parked_at=None).exists()
    saga.start()
    changelist = "/admin/outbox/outboxmessage/"

    # the admin lists them with their error and their order
    clerk = browser(StaffMemberFactory(permissions=["orders.view_order", "outbox.view_outboxmessage"]))
    html = clerk.get(changelist + "?state=parked").content.decode()
    assert "EncodeError: cannot encode the message" in html and f"/admin/orders/order/{order_id}/change/" in html

    # when a customer, or staff without the right to drive a saga on, try to re-queue them
    requeue(browser(customer), changelist, parked)
    requeue(clerk, changelist, parked)

    # then nothing moved
    assert OutboxMessage.objects.filter(pk__in=parked, parked_at__isnull=False).count() == len(parked)

    # when staff who may retry sagas re-queue them from the admin
    operator = StaffMemberFactory(permissions=["orders.view_order", "outbox.view_outboxmessage", "orders.retry_saga"])
    response = requeue(browser(operator), changelist, parked)
    assert response.status_code == 302

    # then the messages are published, the saga runs, and the order ends
    assert wait_for_terminal([order_id])[order_id].status == Status.COMPLETED
    assert OutboxMessage.objects.filter(pk__in=parked, parked_at=None, sent_at__isnull=False).count() == len(parked)
    # audited: in the admin's log and in the order's journal, under the operator's name
    logged = LogEntry.objects.filter(user=operator, object_id__in=[str(i) for i in parked])
    assert logged.count() == len(parked)
    assert all("EncodeError" in entry.get_change_message() for entry in logged)
    lines = OrderEvent.objects.filter(order_id=order_id, name="requeue")
    assert lines.count() == len(parked)
    assert {(line.actor, line.service) for line in lines} == {(operator.username, "staff")}


def test_a_parked_event_requeued_from_the_admin_is_handled_exactly_once(
    saga,
    special_worker,
    smtp_server,  # noqa: F811 (the fixture imported above)
    api,
    coordination,
):
    # given a mail server that is down past the inbox's retries: the customer's emails are parked
    mailless = special_worker(env={"EMAIL_URL": f"smtp://127.0.0.1:{free_port()}", "EVENTS_MAX_ATTEMPTS": "1"})
    order_id = post_order(api, order_body(ProductFactory(stock=5)))
    assert wait_for_terminal([order_id])[order_id].status == Status.COMPLETED
    parked = InboxEntry.objects.filter(saga_id=order_id, consumer="notifications.email_customer", parked=True)
    wait_until(lambda: parked.count() == 2)
    assert all("SMTP" in entry.error or "onnection" in entry.error for entry in parked)
    ids = list(parked.values_list("id", flat=True))

    # when the mail server is back and staff re-queue both events from the admin
    catcher, port = smtp_server
    mailless.stop()
    special_worker(env={"EMAIL_URL": f"smtp://127.0.0.1:{port}"})
    operator = StaffMemberFactory(permissions=["orders.view_order", "events.view_inboxentry", "orders.retry_saga"])
    changelist = "/admin/events/inboxentry/"
    assert "parked" in browser(operator).get(changelist + "?parked__exact=1").content.decode()
    requeue(browser(operator), changelist, ids)

    # then each email goes out once, and the inbox records each event as handled
    wait_until(lambda: len(catcher.received()) == 2)
    wait_until_settled()
    handled = InboxEntry.objects.filter(saga_id=order_id, consumer="notifications.email_customer")
    assert sorted(handled.values_list("event_name", "parked")) == [("order.completed", False), ("order.placed", False)]
    assert Notification.objects.filter(order_id=order_id, status="sent").count() == 2

    # when the same deliveries come again (a broker redelivers, staff press the button twice)
    again = OutboxMessage.objects.filter(shard=order_id, name="notifications.handle_event").order_by("-id")[:2]
    relay.outbox_resend(ids=[row.pk for row in again])
    requeue(browser(operator), changelist, ids)
    wait_until_settled()

    # then nothing more is sent
    assert len(catcher.received()) == 2
    assert OrderEvent.objects.filter(order_id=order_id, name="requeue").count() == 2


def test_the_stuck_view_lists_an_order_whose_worker_was_killed_with_the_step_it_waits_on(
    saga, api, settings, coordination
):
    # given one order that has ended, and one whose worker is killed while it charges the card
    product = ProductFactory(stock=5)
    finished = post_order(api, order_body(product))
    wait_for_terminal([finished])
    stuck = post_order(api, order_body(product, token="tok_slow"))
    wait_for_step(stuck, "charge_payment", "running")
    saga.kill()
    viewer = browser(StaffMemberFactory(permissions=["orders.view_order"]))

    # when staff look at what is stuck now
    response = viewer.get("/admin/orders/order/stuck/")

    # then the killed order is listed, with its mode and the step it waits on; the other is not
    html = response.content.decode()
    row = html[html.index(f'data-order="{stuck}"') :].split("</tr>")[0]
    assert f"<td>{coordination}</td>" in row
    assert "charge_payment (forward)" in row and "<td>running</td>" in row and "<td>1</td>" in row
    assert finished not in html
    # and only staff with the right to see every order may look
    assert browser(StaffMemberFactory()).get("/admin/orders/order/stuck/").status_code == 403

    # when a worker is back and the sweeper brings the order home, it is no longer listed
    saga.start()
    settings.SAGA_STALL_SECONDS = 0
    recover_until_terminal([stuck])
    assert stuck not in viewer.get("/admin/orders/order/stuck/").content.decode()
