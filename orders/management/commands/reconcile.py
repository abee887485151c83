"""``manage.py reconcile``: compare ended orders with the providers' ledgers now (beat does it
every ``RECONCILE_INTERVAL_SECONDS``); for scripts, cron jobs and an on-call shell."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orders.reconciliation import orders_reconcile


class Command(BaseCommand):
    help = (
        "Compare ended orders with the payment provider's and the carrier's ledgers; repair what the "
        "saga's rules repair, flag the rest for staff. Exit status 1 when an order was flagged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=None, help="orders to compare (default RECONCILE_BATCH)")
        parser.add_argument("--dry-run", action="store_true", help="report what does not add up, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        report = orders_reconcile(limit=options["limit"], dry_run=options["dry_run"])
        self.stdout.write(
            f"checked {report.checked}, repaired {len(report.repaired)}, flagged {len(report.mismatched)}, "
            f"unknown yet {len(report.unknown)}"
        )
        for label, ids in (("repaired", report.repaired), ("flagged", report.mismatched)):
            for order_id in ids:
                self.stdout.write(f"{label} {order_id}")
        if report.mismatched:
            raise SystemExit(1)
