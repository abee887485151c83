"""A Celery app whose worker dies (SIGKILL, the whole process group) right after committing a
payments hop that it would run in process, before running it: the row is all that is left of
the hop. Dies once: ``CHAOS_MARK`` names a file written before dying. Start a worker with
``-A tests.chaos.apps.dies_before_a_hop``."""

import os
import signal
from pathlib import Path
from typing import Any

from celery.signals import worker_process_init

from config.celery import app

__all__ = ["app"]


@worker_process_init.connect
def die_before_the_payments_hop(**kwargs: Any) -> None:
    from outbox import nearby  # once Django is set up

    run = nearby._run
    mark = Path(os.environ["CHAOS_MARK"])

    def run_or_die(pk: int, message: dict[str, Any], *args: Any) -> None:
        if str(message.get("task", "")).startswith("payments.") and not mark.exists():
            mark.write_text(str(pk))
            os.killpg(os.getpgid(0), signal.SIGKILL)
        run(pk, message, *args)

    nearby._run = run_or_die  # type: ignore[assignment]
