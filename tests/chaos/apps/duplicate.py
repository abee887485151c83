"""A Celery app that publishes every task message twice, with the same task id: at-least-once
delivery at its worst. A hop run in process (``outbox.nearby``) is sent through the broker as
well, once it has run, as the relay sends one whose run outlived its lease. Start a worker
with ``-A tests.chaos.apps.duplicate``."""

from typing import Any

from celery import signature
from celery.signals import after_task_publish, worker_process_init

from config.celery import app

__all__ = ["app"]


@after_task_publish.connect
def publish_again(
    sender: str | None = None,
    body: Any = None,
    exchange: str | None = None,
    routing_key: str | None = None,
    headers: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    # A copy is not copied again, nor is a retry: each message that a saga step publishes
    # arrives twice, and both copies run (and retry) on their own.
    if not headers or headers.get("chaos_duplicate") or headers.get("retries"):
        return
    with app.producer_or_acquire() as producer:
        producer.publish(
            body,
            exchange=exchange,
            routing_key=routing_key,
            headers={**headers, "chaos_duplicate": True},
            serializer="json",
            correlation_id=headers.get("id"),
            declare=[],
            retry=True,
        )


@worker_process_init.connect
def run_in_process_hops_twice(**kwargs: Any) -> None:
    from outbox import nearby  # once Django is set up

    run = nearby._run

    def run_and_send_a_copy(pk: int, message: dict[str, Any], options: dict[str, Any], *args: Any) -> None:
        run(pk, message, options, *args)
        signature(message, app=app).apply_async(**options, headers={"chaos_duplicate": "yes"})

    nearby._run = run_and_send_a_copy  # type: ignore[assignment]
