from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "outbox"
    verbose_name = "Outbox"

    def ready(self) -> None:
        from core.metrics import metrics_register
        from outbox.metrics import OutboxCollector

        metrics_register(OutboxCollector())
