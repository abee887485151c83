"""A Celery app whose saga error callback never does anything: a lost ``link_error``.
Start a worker with ``-A tests.chaos.apps.no_errback``."""

from typing import Any

from celery.signals import worker_process_init

from config.celery import app

__all__ = ["app"]


@worker_process_init.connect
def lose_the_error_callback(**kwargs: Any) -> None:
    app.tasks["orders.compensate"].run = lambda *args, **kw: None  # type: ignore[method-assign]
