"""``manage.py recover_stalled [--dry-run] [--limit N]``: the sweeper's recovery, run now."""

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from orders import selectors, services
from orders.management.commands._operator import FOUND, OK, bad_input


class Command(BaseCommand):
    help = (
        "Re-drive every saga with no progress for SAGA_STALL_SECONDS, and cancel as expired the orders "
        "pending for longer than ORDER_PENDING_EXPIRY_SECONDS, as beat's sweeper does (its journal lines "
        "name the sweeper). Exit 0: nothing was stalled; 1: some were (re-driven, or listed by a dry run); "
        "2: bad input."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list what would be recovered; change nothing")
        parser.add_argument("--limit", type=int, default=500, help="at most this many orders (default 500)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["limit"] < 1:
            raise bad_input("--limit must be at least 1.")
        if options["dry_run"]:
            stalled = selectors.orders_stalled(limit=options["limit"])
            for found in stalled:
                what = "would expire" if found.expires else "would re-drive"
                idle = found.idle.total_seconds()
                self.stdout.write(f"{what} {found.order.pk} ({found.order.status}, no progress for {idle:.0f} s)")
            self.stdout.write(
                f"{len(stalled)} stalled saga(s) (no progress for {settings.SAGA_STALL_SECONDS:.0f} s) (dry run)."
            )
            raise SystemExit(FOUND if stalled else OK)

        report = services.saga_recover_stalled(limit=options["limit"])
        for order_id in report.redriven:
            self.stdout.write(f"re-driven {order_id}")
        for order_id in report.expired:
            self.stdout.write(f"expired {order_id}")
        self.stdout.write(f"{len(report.redriven)} re-driven, {len(report.expired)} expired.")
        raise SystemExit(FOUND if report.redriven or report.expired else OK)
