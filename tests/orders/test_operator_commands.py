"""The operators' commands (orders/management/commands/): what each changes, what it journals,
and the exit status a script tests (0 nothing wrong, 1 something found or left, 2 bad input)."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line
from django.utils import timezone

from events.models import InboxEntry
from orders.models import Order, OrderEvent, Reason, Status
from orders.services import OrderItem, order_place
from outbox.models import OutboxMessage
from tests.factories import ProductFactory, address

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(customer) -> Order:
    return order_place(
        user=customer,
        items=[OrderItem(ProductFactory.create().sku, 1)],
        shipping_address=address(),
        payment_token="tok_visa",
    )


def run(*args: str) -> tuple[int, str, str]:
    """The command's exit status, its output and its errors, as a shell would see them."""
    out, err = StringIO(), StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as exit:
        return int(exit.code or 0), out.getvalue(), err.getvalue()
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), err.getvalue()


def park_message(order: Order) -> OutboxMessage:
    message = OutboxMessage.objects.filter(shard=str(order.pk)).order_by("id").first()
    assert message is not None
    OutboxMessage.objects.filter(pk=message.pk).update(
        parked_at=timezone.now(), attempts=5, last_error="Traceback ...\nEncodeError: cannot encode"
    )
    return message


def park_event(order: Order) -> InboxEntry:
    event_id = str(uuid.uuid4())
    return InboxEntry.objects.create(
        consumer="notifications.email_customer", event_id=event_id, event_name="order.placed",
        saga_id=str(order.pk), parked=True, error="SMTPServerDisconnected: gone",
        event={"id": event_id, "name": "order.placed", "saga_id": str(order.pk), "mode": "orchestration",
               "publisher": "orders"},
    )  # fmt: skip


def requeue_lines(order: Order) -> list[tuple[str, str]]:
    return list(OrderEvent.objects.filter(order=order, name="requeue").values_list("actor", "message"))


# --- requeue_parked -----------------------------------------------------------------------------


def test_requeueing_a_parked_message_publishes_it_again_and_journals_who_did(order):
    message = park_message(order)

    status, out, _ = run("requeue_parked", "messages", str(message.pk), "--actor", "oncall-alice")

    assert status == 0
    assert f"re-queued message #{message.pk}" in out
    message.refresh_from_db()
    assert message.parked_at is None and message.attempts == 0  # due again, a fresh budget
    [(actor, line)] = requeue_lines(order)
    assert actor == "oncall-alice" and "EncodeError: cannot encode" in line


def test_a_dry_run_lists_every_parked_row_and_changes_nothing(order):
    message = park_message(order)
    event = park_event(order)

    messages = run("requeue_parked", "messages", "--all", "--dry-run")
    events = run("requeue_parked", "events", "--all", "--dry-run")

    assert messages[0] == 1 and f"would re-queue message #{message.pk}" in messages[1]
    assert events[0] == 1 and f"would re-queue event #{event.pk}" in events[1]
    assert OutboxMessage.objects.get(pk=message.pk).parked_at is not None
    assert InboxEntry.objects.get(pk=event.pk).parked
    assert requeue_lines(order) == []


def test_requeueing_every_parked_event_delivers_it_again_under_the_os_user(order, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "ops-cron")
    event = park_event(order)
    sent_before = OutboxMessage.objects.filter(shard=str(order.pk)).count()

    status, out, _ = run("requeue_parked", "events", "--all")

    assert status == 0 and "1 parked events re-queued by ops-cron" in out
    assert not InboxEntry.objects.filter(pk=event.pk).exists()  # its handler will record it once handled
    assert OutboxMessage.objects.filter(shard=str(order.pk)).count() == sent_before + 1
    [(actor, line)] = requeue_lines(order)
    assert actor == "ops-cron" and "SMTPServerDisconnected: gone" in line


def test_nothing_parked_is_exit_0_and_a_named_row_that_is_not_parked_is_exit_1(order):
    assert run("requeue_parked", "messages", "--all")[0] == 0
    waiting = OutboxMessage.objects.filter(shard=str(order.pk)).first()
    assert waiting is not None

    status, _, err = run("requeue_parked", "messages", str(waiting.pk))

    assert status == 1 and f"#{waiting.pk} is not parked" in err
    assert requeue_lines(order) == []


@pytest.mark.parametrize("args", [("messages",), ("messages", "1", "--all")])
def test_requeue_without_a_clear_selection_is_bad_input(args):
    assert run("requeue_parked", *args)[0] == 2


@pytest.mark.parametrize("args", [("letters", "--all"), ("events", "not-an-id")])
def test_requeue_with_arguments_it_does_not_know_is_bad_input(args, capsys):
    # argparse's own refusal, as a shell sees it (call_command reports it differently)
    with pytest.raises(SystemExit) as exit:
        execute_from_command_line(["manage.py", "requeue_parked", *args])
    assert exit.value.code == 2
    assert "invalid" in capsys.readouterr().err


# --- recover_stalled ----------------------------------------------------------------------------


def test_recovering_re_drives_a_stalled_saga_and_expires_an_old_pending_order(customer, settings):
    settings.SAGA_STALL_SECONDS = 60
    settings.ORDER_PENDING_EXPIRY_SECONDS = 15 * 60
    product = ProductFactory.create()

    def placed(**ago: timedelta) -> Order:
        order = order_place(user=customer, items=[OrderItem(product.sku, 1)], shipping_address=address(),
                            payment_token="tok_visa")  # fmt: skip
        Order.objects.filter(pk=order.pk).update(**{field: timezone.now() - delta for field, delta in ago.items()})
        return order

    stalled = placed(progressed_at=timedelta(minutes=5))
    too_old = placed(progressed_at=timedelta(hours=1), created_at=timedelta(hours=1))
    moving = placed()

    # a dry run lists both, and changes nothing
    status, out, _ = run("recover_stalled", "--dry-run")
    assert status == 1
    assert f"would re-drive {stalled.pk}" in out and f"would expire {too_old.pk}" in out and str(moving.pk) not in out
    assert Order.objects.get(pk=too_old.pk).status == Status.PENDING

    # the real run re-drives one and cancels the other as expired, in their journals
    status, out, _ = run("recover_stalled")
    assert status == 1 and f"re-driven {stalled.pk}" in out and f"expired {too_old.pk}" in out
    assert Order.objects.get(pk=stalled.pk).recoveries == 1
    assert OrderEvent.objects.filter(order=stalled, actor="sweeper", message__startswith="Re-driven").exists()
    assert Order.objects.get(pk=too_old.pk).cancellation_reason == Reason.EXPIRED

    # and then nothing is stalled any more
    assert run("recover_stalled")[0] == 0
    assert run("recover_stalled", "--limit", "0")[0] == 2


# --- show_saga ----------------------------------------------------------------------------------


def test_show_saga_prints_the_steps_the_journal_and_the_outbox(order):
    status, out, _ = run("show_saga", str(order.pk))

    assert status == 0
    assert out.startswith(f"Order {order.pk}: pending")
    assert "charge_payment (forward): pending, 0 attempt(s)" in out
    assert "orders action: Order placed" in out and "orders event order.placed\n" in out
    outbox = out.split("\nOutbox (")[1]
    assert "inventory.reserve_stock" in outbox and "waiting" in outbox


def test_show_saga_exits_1_for_an_order_that_needs_staff(order):
    message = park_message(order)
    park_event(order)

    status, out, _ = run("show_saga", str(order.pk))

    assert status == 1
    assert f"#{message.pk} " in out and "parked" in out and "EncodeError: cannot encode" in out
    assert "Parked event" in out and "SMTPServerDisconnected: gone" in out
    assert "Needs staff: pending, 1 parked message(s), 1 parked event(s)." in out


@pytest.mark.parametrize("order_id", ["not-a-uuid", "00000000-0000-4000-8000-000000000000"])
def test_show_saga_of_no_such_order_is_bad_input(order_id):
    status, _, error = run("show_saga", order_id)
    assert status == 2 and "No order" in error
