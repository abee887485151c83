"""``manage.py requeue_parked messages|events (ID ... | --all) [--dry-run] [--actor NAME]``:
the admin's *Re-queue* action on parked outbox messages or parked events, for scripts and cron."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from events.models import InboxEntry
from orders import selectors, staff
from orders.management.commands._operator import FOUND, OK, add_actor_argument, bad_input, error_line
from outbox.models import OutboxMessage


def _describe(row: OutboxMessage | InboxEntry) -> str:
    if isinstance(row, OutboxMessage):
        return f"message #{row.pk} {row.name} (order {row.shard}): {error_line(row.last_error)}"
    return f"event #{row.pk} {row.event_name} for {row.consumer} (order {row.saga_id}): {error_line(row.error)}"


class Command(BaseCommand):
    help = (
        "Re-queue parked outbox messages or parked events, as the admin's action does (audited in each "
        "order's journal). Exit 0: all re-queued (or nothing parked); 1: a dry run found some, or a named id "
        "is not parked; 2: bad input."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("kind", choices=["messages", "events"], help="outbox messages or inbox events")
        parser.add_argument("ids", nargs="*", type=int, help="the parked rows' ids (the admin's id column)")
        parser.add_argument("--all", action="store_true", help="every parked row of that kind")
        parser.add_argument("--dry-run", action="store_true", help="say what would be re-queued; change nothing")
        add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[int] = options["ids"]
        if bool(ids) == options["all"]:
            raise bad_input("Name the parked rows' ids, or --all (not both).")
        wanted = None if options["all"] else ids
        events = options["kind"] == "events"
        parked: list[OutboxMessage] | list[InboxEntry] = (
            selectors.parked_events(ids=wanted) if events else selectors.parked_messages(ids=wanted)
        )
        if options["dry_run"]:
            for row in parked:
                self.stdout.write(f"would re-queue {_describe(row)}")
            self._report_not_parked(ids, parked)
            self.stdout.write(f"{len(parked)} parked {options['kind']} would be re-queued (dry run).")
            raise SystemExit(FOUND if parked else OK)

        selected = [row.pk for row in parked]
        try:
            done: list[OutboxMessage] | list[InboxEntry] = (
                staff.parked_events_requeue(ids=selected, actor=options["actor"])
                if events
                else staff.parked_messages_requeue(ids=selected, actor=options["actor"])
            )
        except LookupError as exc:  # an event's consumer no longer subscribes to it: nothing was re-queued
            self.stderr.write(f"Nothing was re-queued: {exc}")
            raise SystemExit(FOUND) from None
        for row in done:
            self.stdout.write(f"re-queued {_describe(row)}")
        left = self._report_not_parked(ids, done)
        self.stdout.write(f"{len(done)} parked {options['kind']} re-queued by {options['actor']}.")
        raise SystemExit(FOUND if left or len(done) < len(selected) else OK)

    def _report_not_parked(self, ids: list[int], parked: list[OutboxMessage] | list[InboxEntry]) -> list[int]:
        missing = sorted(set(ids) - {row.pk for row in parked})
        for pk in missing:
            self.stderr.write(f"#{pk} is not parked (or does not exist): left alone")
        return missing
