from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "outbox"
    verbose_name = "Outbox"

    def ready(self) -> None:
        from core.metrics import metrics_register
        from core.selectors import backlog_register
        from outbox.metrics import OutboxCollector
        from outbox.selectors import outbox_oldest_due_at

        metrics_register(OutboxCollector())
        backlog_register(outbox_oldest_due_at)  # /readyz: the outbox drains
