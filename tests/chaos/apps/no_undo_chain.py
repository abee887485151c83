"""A Celery app whose failing steps never send their chain of compensations (orchestration): the
order turns back in the database and nothing undoes it until the sweeper looks. Start a worker
with ``-A tests.chaos.apps.no_undo_chain``."""

from typing import Any

from celery.signals import worker_process_init

from config.celery import app

__all__ = ["app"]


@worker_process_init.connect
def lose_the_undo_chain(**kwargs: Any) -> None:
    from sagas.hops import CanvasHops  # once Django is set up

    CanvasHops.send_failed = lambda *args, **kw: None  # type: ignore[method-assign]
