"""``manage.py show_saga ORDER_ID``: one order's saga as text, for an on-call shell."""

import uuid
from argparse import ArgumentParser
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand

from orders import selectors
from orders.management.commands._operator import FOUND, OK, bad_input, error_line
from orders.models import Order, Status


def _at(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


class Command(BaseCommand):
    help = (
        "Show one order's saga: its steps, its journal (oldest first) and its outbox rows. Exit 0: nothing "
        "waits for staff; 1: it needs attention or has a parked message or event; 2: no such order."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("order_id", help="the order's id (a UUID)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            saga = selectors.order_saga(order_id=uuid.UUID(options["order_id"]))
        except (ValueError, Order.DoesNotExist):
            raise bad_input(f"No order {options['order_id']!r}.") from None
        order = saga.order
        write = self.stdout.write
        write(
            f"Order {order.pk}: {order.status}"
            + (f" ({order.cancellation_reason})" if order.cancellation_reason else "")
        )
        write(f"  {order.coordination}, placed {_at(order.created_at)}, last progress {_at(order.progressed_at)}, "
              f"re-driven {order.recoveries} time(s)")  # fmt: skip

        write(f"\nSteps ({len(saga.steps)})")
        for step in saga.steps:
            error = f"  error: {error_line(step.error)}" if step.error else ""
            write(f"  {step.position:>2} {step.name} ({step.kind}): {step.status}, {step.attempts} attempt(s), "
                  f"{_at(step.started_at)} → {_at(step.finished_at)}{error}")  # fmt: skip

        write(f"\nJournal ({len(saga.journal)})")
        for line in saga.journal:
            name, detail = (f" {line.name}" if line.name else ""), (f": {line.detail}" if line.detail else "")
            write(f"  {line.seq:>3} {_at(line.at)} {line.service} {line.kind}{name}{detail}")

        write(f"\nOutbox ({len(saga.outbox)})")
        for row in saga.outbox:
            state = "parked" if row.parked_at else "published" if row.sent_at else "waiting"
            error = f"  error: {error_line(row.last_error)}" if row.last_error else ""
            write(f"  #{row.pk} {row.name}: {state}, {row.attempts} attempt(s), created {_at(row.created_at)}{error}")

        parked_messages = [row for row in saga.outbox if row.parked_at]
        for entry in saga.parked_events:
            write(f"\nParked event #{entry.pk} {entry.event_name} for {entry.consumer}: {error_line(entry.error)}")
        if order.status == Status.NEEDS_ATTENTION or parked_messages or saga.parked_events:
            write(
                f"\nNeeds staff: {order.status}, {len(parked_messages)} parked message(s), "
                f"{len(saga.parked_events)} parked event(s)."
            )
            raise SystemExit(FOUND)
        raise SystemExit(OK)
